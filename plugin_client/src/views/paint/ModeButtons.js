// The painting toolbar's modes: Brush, Eraser and Pan; a click triggers `mode` with the mode's id.
import template from './modeButtons.pug';

const { $ } = girder;
const { View } = girder.views;

const MODES = [
  { id: 'brush', name: 'Brush' },
  { id: 'eraser', name: 'Eraser' },
  { id: 'pan', name: 'Pan' },
];

const ModeButtons = View.extend({
  events: {
    'click .hl-mode': '_clicked',
  },

  initialize() {
    this.render();
  },

  render() {
    this.$el.html(template({ modes: MODES }));
    return this;
  },

  /** Show `mode` as the chosen one. */
  show(mode) {
    this.$('.hl-mode').each((i, button) => $(button).toggleClass('active btn-primary', button.dataset.mode === mode));
  },

  disable() {
    this.$('.hl-mode').prop('disabled', true);
  },

  _clicked(event) {
    this.trigger('mode', event.currentTarget.dataset.mode);
  },
});

export default ModeButtons;
