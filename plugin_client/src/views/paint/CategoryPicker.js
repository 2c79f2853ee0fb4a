// The painting toolbar's categories as buttons: a click triggers `choose` with the category's index; the active
// category's button is shown pressed.
import template from './categoryPicker.pug';

const { $ } = girder;
const { View } = girder.views;

const CategoryPicker = View.extend({
  events: {
    'click .hl-bulk-category': '_clicked',
  },

  render(categories) {
    this.$el.html(template({ categories }));
    return this;
  },

  /** Show the category at `index` as the active one. */
  setActive(index) {
    this.$('.hl-bulk-category').each((i, button) => {
      $(button).toggleClass('active btn-primary', i === index);
    });
  },

  _clicked(event) {
    event.currentTarget.blur();
    this.trigger('choose', Number(event.currentTarget.dataset.index));
  },
});

export default CategoryPicker;
