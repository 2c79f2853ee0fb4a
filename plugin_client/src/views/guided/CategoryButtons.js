// The categories as buttons beside the viewer: a click triggers `choose` with the category's name; the button of the
// current card's label is shown pressed. Below them, "Not classifiable" (for artifacts, blur, pen ink: segments
// nobody can put in a category) triggers `unclassifiable`.
import template from './categoryButtons.pug';

const { $ } = girder;
const { View } = girder.views;

/** The key that marks the current card "not classifiable": `x`, or none when a category has that hotkey. */
export function unclassifiableKey(categories) {
  return categories.some((c) => c.hotkey && c.hotkey.toLowerCase() === 'x') ? null : 'x';
}

const CategoryButtons = View.extend({
  events: {
    'click .hl-choose': '_clicked',
    'click .hl-unclassifiable': '_unclassifiableClicked',
  },

  initialize({ categories }) {
    this.categories = categories;
    this.render();
  },

  render() {
    this.$el.html(template({ categories: this.categories, unclassifiableKey: unclassifiableKey(this.categories) }));
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

  _unclassifiableClicked(event) {
    this.trigger('unclassifiable');
    event.currentTarget.blur();
  },
});

export default CategoryButtons;
