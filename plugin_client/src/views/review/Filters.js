// The filters of the review page's labels listing: slide, labeler, category, reviewed, agreement with the model,
// sort, grouping and page size. A change triggers `change` with the select's name and value. The labelers are those
// seen so far (in the labels listed and in the agreement), kept by id with their logins.
import optionsTemplate from '../options.pug';
import template from './filters.pug';

const { View } = girder.views;

export const PAGE_SIZES = [24, 48, 96];

/** The sorts of the labels listing offered here: `value` is `field:direction` for GET .../labels. */
export const SORTS = [
  { value: 'updated:-1', text: 'Newest change first' },
  { value: 'updated:1', text: 'Oldest change first' },
  { value: 'segment:1', text: 'Segment number' },
  { value: 'category:1', text: 'Category (A–Z)' },
  { value: 'certainty:1', text: 'Certainty (least first)' },
  { value: 'certainty:-1', text: 'Certainty (most first)' },
];

const GROUPS = [
  { value: '', text: 'No grouping' },
  { value: 'category', text: 'Category' },
  { value: 'item', text: 'Slide' },
  { value: 'predicted', text: 'Model prediction' },
];

const Filters = View.extend({
  events: {
    'change select': '_changed',
  },

  /** `filters` are the chosen values by select name (changed in place), `slides` and `categories` the project's. */
  initialize({ filters, slides, categories }) {
    this.filters = filters;
    this.slides = slides;
    this.categories = categories;
    this.labelers = new Map(); // user id -> login
    this.render();
  },

  render() {
    this.$el.html(template({
      filters: this.filters,
      lists: {
        item: [{ value: '', text: 'All slides' }, ...this.slides.map((s) => ({ value: s._id, text: s.name }))],
        labeler: this._labelerOptions(),
        category: [{ value: '', text: 'All categories' },
          ...this.categories.map((c) => ({ value: c.name, text: c.name }))],
        reviewed: [{ value: '', text: 'Either' }, { value: 'true', text: 'Reviewed' },
          { value: 'false', text: 'Not reviewed' }],
        disagree: [{ value: '', text: 'Agrees or not' }, { value: 'true', text: 'Disagrees' },
          { value: 'false', text: 'Agrees' }],
        sort: SORTS,
        group: GROUPS,
        limit: PAGE_SIZES.map((n) => ({ value: String(n), text: String(n) })),
      },
    }));
    return this;
  },

  /** Add labelers (`[id, login]` pairs) not seen yet to the labeler filter. */
  noteLabelers(labelers) {
    let added = false;
    labelers.forEach(([id, login]) => {
      if (id && !this.labelers.has(id)) {
        this.labelers.set(id, login);
        added = true;
      }
    });
    if (added) {
      this.$('select[name="labeler"]').html(optionsTemplate({
        list: this._labelerOptions(), selected: this.filters.labeler,
      }));
    }
  },

  _labelerOptions() {
    const list = [...this.labelers].map(([value, text]) => ({ value, text: text || value }))
      .sort((a, b) => a.text.localeCompare(b.text));
    return [{ value: '', text: 'All labelers' }, ...list];
  },

  _changed(event) {
    const { name, value } = event.currentTarget;
    this.filters[name] = value;
    this.trigger('change', name, value);
  },
});

export default Filters;
