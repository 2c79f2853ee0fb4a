// The row of suggestions as cards (thumbnail, the prediction with its probability, why it was suggested, the label
// chosen): a click on a card triggers `select` with its index.
import { apiUrl } from '../../api.js';
import { categoryColor, chance } from '../common.js';
import labelTemplate from './cardLabel.pug';
import template from './cardStrip.pug';

const { View } = girder.views;

const CardStrip = View.extend({
  events: {
    'click .hl-card': '_clicked',
  },

  /** `categories` are the project's. */
  initialize({ categories }) {
    this.categories = categories;
  },

  /** Draw a new row of cards. */
  render(cards = []) {
    this.$el.html(template({
      cards, chance, color: (name) => categoryColor(this.categories, name),
      thumbnail: (card) => apiUrl(card.thumbnail),
    }));
    return this;
  },

  /** Reflect the cards' labels, saves and the current card without redrawing the images of the row. */
  update(cards, current) {
    cards.forEach((card, index) => {
      const el = this.$(`.hl-card[data-index="${index}"]`);
      const label = card.labels[card.labels.length - 1];
      el.toggleClass('hl-current', index === current);
      el.toggleClass('hl-labeled', Boolean(label));
      el.toggleClass('hl-saving', card.saving > 0);
      el.find('.hl-card-label').html(labelTemplate({ label, color: categoryColor(this.categories, label) }));
    });
  },

  _clicked(event) {
    this.trigger('select', Number(event.currentTarget.dataset.index));
  },
});

export default CardStrip;
