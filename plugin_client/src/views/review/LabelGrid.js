// The review page's cards: one per label of the page shown (thumbnail, category, labeler, date, the model's
// prediction and certainty, review state), all together or grouped by a field of the labels (the groups are of the
// page shown). Users with write access approve or override a label (PUT .../labels/{id}/review; triggers `reviewed`)
// or relabel its segment (PUT .../labels, view "review", which sets their own label of it; triggers `relabeled`).
import { apiUrl, request, segmentRoute } from '../../api.js';
import { categoryColor } from '../common.js';
import cardTemplate from './labelCard.pug';
import template from './labelGrid.pug';

const { $ } = girder;
const { View } = girder.views;

/** The model's certainty (its probability of the predicted category) as a whole percentage, e.g. "62 %". */
function certaintyText(certainty) {
  return typeof certainty === 'number' ? `${Math.round(certainty * 100)} %` : '';
}

function when(iso) {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function reviewText(review) {
  if (!review) {
    return 'Not reviewed';
  }
  const by = review.reviewerLogin ? ` by ${review.reviewerLogin}` : '';
  return review.status === 'overridden' ? `Overridden → ${review.category}${by}` : `Approved${by}`;
}

const LabelGrid = View.extend({
  events: {
    'click .hl-review-approve': '_approveClicked',
    'click .hl-review-override': '_overrideClicked',
    'click .hl-review-relabel': '_relabelClicked',
  },

  /**
   * `folderId` is the project's folder, `base` its API path, `categories` and `slides` the project's, `canWrite` whether the user reviews,
   * `messages` the page's MessagesView, `accepts(label)` whether a label belongs on the page as listed.
   */
  initialize({ folderId, base, categories, slides, canWrite, messages, accepts }) {
    Object.assign(this, { folderId, base, categories, slides, canWrite, messages, accepts });
    this.labels = [];
  },

  _slideName(itemId) {
    const slide = this.slides.find((s) => s._id === itemId);
    return slide ? slide.name : itemId;
  },

  /** What the card templates need besides the labels. */
  _locals() {
    return {
      categories: this.categories, canWrite: this.canWrite, certaintyText, when, reviewText,
      color: (name) => categoryColor(this.categories, name), thumbnail: (label) => apiUrl(label.thumbnail),
      slideName: (itemId) => this._slideName(itemId),
      jump: (label) => `#${segmentRoute(this.folderId, label.item, label.segment, 'review')}`,
    };
  },

  /** Dim the cards while the next page loads. */
  loading() {
    this.$el.addClass('hl-loading');
  },

  /**
   * Show `labels` (null: the listing failed), grouped by their field `group` (none: not grouped), groups sorted by
   * title.
   */
  render(labels, group) {
    this.labels = labels || [];
    this.$el.removeClass('hl-loading');
    if (!labels || !labels.length) {
      this.$el.html(template({ empty: labels ? 'No labels match these filters.' : 'No labels to show.' }));
      return this;
    }
    let groups = null;
    if (group) {
      const byValue = new Map();
      for (const label of labels) {
        const value = label[group] || '';
        if (!byValue.has(value)) {
          byValue.set(value, []);
        }
        byValue.get(value).push(label);
      }
      const title = (value) => {
        if (!value) {
          return group === 'predicted' ? 'No prediction' : '(none)';
        }
        return group === 'item' ? this._slideName(value) : value;
      };
      groups = [...byValue].map(([value, members]) => ({ value, title: title(value), labels: members }))
        .sort((a, b) => a.title.localeCompare(b.title));
    }
    this.$el.html(template({ ...this._locals(), labels, groups }));
    return this;
  },

  _cardOf(event) {
    const card = $(event.currentTarget).closest('.hl-review-card');
    const label = this.labels.find((l) => l._id === card.attr('data-label-id'));
    return { card, label, choice: card.find('.hl-review-choice').val() };
  },

  _approveClicked(event) {
    const { card, label } = this._cardOf(event);
    this._review(card, label, null);
  },

  _overrideClicked(event) {
    const { card, label, choice } = this._cardOf(event);
    if (choice === label.category) {
      this.messages.add(`Choose a category other than "${label.category}" to override this label, or approve it.`,
        'warning');
      return;
    }
    this._review(card, label, choice);
  },

  async _review(card, label, category) {
    card.addClass('hl-review-saving').find('button, select').prop('disabled', true);
    try {
      const params = category ? { category } : undefined;
      const { data } = await request('PUT', `${this.base}/labels/${label._id}/review`, { params });
      Object.assign(label, data);
      card.replaceWith(cardTemplate({ ...this._locals(), label }));
      this.trigger('reviewed');
    } catch (error) {
      card.removeClass('hl-review-saving').find('button, select').prop('disabled', false);
      this.messages.failed(category ? `Could not override the label with "${category}"` : 'Could not approve the label',
        error);
    }
  },

  async _relabelClicked(event) {
    const { card, label, choice } = this._cardOf(event);
    card.addClass('hl-review-saving').find('button, select').prop('disabled', true);
    try {
      await request('PUT', `${this.base}/labels`, {
        json: { labels: [{ item: label.item, segment: label.segment, category: choice }], view: 'review' },
      });
    } catch (error) {
      card.removeClass('hl-review-saving').find('button, select').prop('disabled', false);
      this.messages.failed(`Could not relabel segment ${label.segment} as "${choice}"`, error);
      return;
    }
    await this._showMine(card, label);
    card.removeClass('hl-review-saving').find('button, select').prop('disabled', false);
    this.messages.add(`Segment ${label.segment} is now labeled "${choice}" by you.`, 'success');
    this.trigger('relabeled');
  },

  /**
   * After a relabel, show the caller's label of that segment where the labeler is looking: in place of its card where
   * the page shows it, else right after the card acted on where it belongs on the page (`accepts`). The page is not
   * listed again, so no card moves under the cursor (newest first, the new label would go on top); the next listing
   * puts it in its sorted place.
   */
  async _showMine(card, label) {
    let mine;
    try {
      const { data } = await request('GET', `${this.base}/labels`, {
        params: { item: label.item, labeler: girder.auth.getCurrentUser().id, sort: 'updated', sortdir: '-1', limit: 1 },
      });
      mine = data.find((found) => found.segment === label.segment);
    } catch (error) {
      this.messages.failed('Could not read your new label', error);
      return;
    }
    if (!mine || this._destroyed) {
      return;
    }
    const shown = this.labels.findIndex((l) => l._id === mine._id);
    const html = cardTemplate({ ...this._locals(), label: mine });
    if (shown >= 0) {
      this.labels[shown] = mine;
      this.$(`.hl-review-card[data-label-id="${mine._id}"]`).replaceWith(html);
    } else if (this.accepts(mine)) {
      this.labels.push(mine);
      card.after(html);
    }
  },
});

export default LabelGrid;
