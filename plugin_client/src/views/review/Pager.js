// The review page's pager: Previous and Next (triggering `previous` and `next`) and which labels are shown.
import template from './pager.pug';
import rangeTemplate from './pagerRange.pug';

const { View } = girder.views;

const Pager = View.extend({
  events: {
    'click .hl-review-prev': '_previous',
    'click .hl-review-next': '_next',
  },

  initialize() {
    this.render();
  },

  render() {
    this.$el.html(template());
    return this;
  },

  /** No paging while a page loads. */
  disable() {
    this.$('.hl-review-prev, .hl-review-next').prop('disabled', true);
  },

  /** Show `count` labels from `offset` of `total` (null: the listing failed), pages being `limit` labels. */
  show({ offset, count, total, limit }) {
    if (total === null) {
      this.$('.hl-review-range').text('The labels could not be listed.');
      return;
    }
    this.$('.hl-review-range').html(rangeTemplate({ first: count ? offset + 1 : 0, last: offset + count, total }));
    this.$('.hl-review-prev').prop('disabled', offset === 0);
    this.$('.hl-review-next').prop('disabled', offset + limit >= total);
  },

  _previous() {
    this.trigger('previous');
  },

  _next() {
    this.trigger('next');
  },
});

export default Pager;
