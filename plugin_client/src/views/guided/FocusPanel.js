// The current card in focus: the slide viewer around its segment (FocusViewer), where it is, what is predicted and
// chosen and whether it is an audit card, and the category buttons (CategoryButtons, whose `choose` and
// `unclassifiable` events the page listens to as `buttons`).
import { segmentRoute } from '../../api.js';
import { categoryColor, chance } from '../common.js';
import CategoryButtons from './CategoryButtons.js';
import FocusViewer from './FocusViewer.js';
import infoTemplate from './focusInfo.pug';
import template from './focusPanel.pug';

const { View } = girder.views;

const FocusPanel = View.extend({
  className: 'hl-focus',

  /**
   * `folderId` is the project's folder; `base`, `slides`, `categories` and `messages` as FocusViewer takes them;
   * `Viewer` the FocusViewer (or a kind of it) that shows the slide; `href` turns a client route into a link, which
   * opens in the window `target` (none: this one).
   */
  initialize({ folderId, base, slides, categories, messages, Viewer = FocusViewer, href, target }) {
    this.folderId = folderId;
    this.categories = categories;
    this.href = href;
    this.target = target;
    this.$el.html(template());
    this.viewer = new Viewer({
      el: this.$('.hl-focus-map'), parentView: this, base, slides, categories, messages,
    });
    this.buttons = new CategoryButtons({ el: this.$('.hl-choices'), parentView: this, categories });
  },

  /** Show `card`, the `position`-th (from 0) of `count` in the row; `upcoming` is the card likely shown next. */
  show(card, position, count, upcoming = null) {
    this.viewer.focus(card, upcoming);
    const label = card.labels[card.labels.length - 1];
    this.$('.hl-focus-info').html(infoTemplate({
      card, label, position: position + 1, count, chance, target: this.target,
      color: (name) => categoryColor(this.categories, name),
      jump: this.href(segmentRoute(this.folderId, card.item, card.segment, 'label')),
    }));
    this.buttons.setActive(label);
  },

  /** Draw the buttons and the viewer's colours again after the project's categories changed (in place). */
  categoriesChanged() {
    this.buttons.render();
    this.viewer.categoriesChanged();
  },
});

export default FocusPanel;
