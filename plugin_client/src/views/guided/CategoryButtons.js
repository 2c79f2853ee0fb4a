// The categories as buttons beside the viewer: a click triggers `choose` with the category's name; the button of the
// current card's label is shown pressed.
import template from './categoryButtons.pug';

const { $ } = girder;
const { View } = girder.views;

const CategoryButtons = View.extend({
  events: {
    'click .hl-choose': '_clicked',
  },

  initialize({ categories }) {
    this.categories = categories;
    this.render();
  },

  render() {
    this.$el.html(template({ categories: this.categories }));
    return this;
  },

  /** Press the button of `label` (none for no label). */
  setActive(label) {
    this.$('.hl-choose').each((_index, el) => {
      $(el).toggleClass('active', $(el).attr('data-category') === label);
    });
  },

  _clicked(event) {
    this.trigger('choose', $(event.currentTarget).attr('data-category'));
    event.currentTarget.blur(); // so that Space and Enter stay the page's keys, not a click of this button
  },
});

export default CategoryButtons;
