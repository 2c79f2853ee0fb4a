// The slides section of the project page: the slides with their segment counts and Paint links and, for admins, the
// Make segments button: one job per slide (POST .../segments), each job's progress polled (GET job/{id}) and shown in
// the slide's row until all are done, then the slides reloaded for their new counts.
import { request } from '../../api.js';
import { LiveView, detailOf, requestOf } from '../common.js';
import template from './slides.pug';

/** How often a running segment job is polled (ms). */
const JOB_POLL_MS = 1000;

/** Girder job statuses (girder_jobs JobStatus). */
const JOB = { INACTIVE: 0, QUEUED: 1, RUNNING: 2, SUCCESS: 3, ERROR: 4, CANCELED: 5 };
const JOB_WORDS = { 0: 'waiting', 1: 'queued', 2: 'running', 3: 'done', 4: 'failed', 5: 'canceled' };

function jobDone(job) {
  return [JOB.SUCCESS, JOB.ERROR, JOB.CANCELED].includes(job.status);
}

function jobFailed(job) {
  return job.status === JOB.ERROR || job.status === JOB.CANCELED;
}

function loadJob(jobId, withLog = false) {
  return request('GET', `job/${jobId}`, { params: withLog ? { includeLog: 'true' } : undefined })
    .then(({ data }) => data);
}

/** The last non-empty line of a job's log (why it failed). */
function lastLogLine(job) {
  const lines = (job.log || []).join('').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] || '';
}

/** What a slide's row shows of its job (slides.pug's `job` mixin): a state's text, or the job's progress. */
function jobOf(job) {
  if (!job) {
    return null;
  }
  if (job.state === 'current' || job.state === 'running-elsewhere') {
    return { state: job.state, text: job.state === 'current' ? 'up to date' : 'a job is already making them' };
  }
  const total = job.total || 0;
  const current = job.current || 0;
  return {
    word: JOB_WORDS[job.status] || 'starting', failed: jobFailed(job), total, current,
    percent: total ? Math.round((100 * current) / total) : 0, message: job.message, error: job.error,
  };
}

const SlidesView = LiveView.extend({
  events: {
    'click .hl-make-segments': '_makeSegments',
  },

  /**
   * `folderId` is the project's, `slides` its slides (GET .../slides), `admin` whether the user makes segments,
   * `paint(itemId)` the route of painting a slide (null without write access).
   */
  initialize({ folderId, slides, admin, paint }) {
    Object.assign(this, { folderId, slides, admin, paint });
    this.jobs = {}; // by item id
    this.message = null;
    this.busy = false;
    this._timers = new Set();
    this.render();
  },

  destroy(...args) {
    this._timers.forEach((timer) => clearTimeout(timer));
    return LiveView.prototype.destroy.apply(this, args);
  },

  render() {
    const jobs = Object.fromEntries(Object.entries(this.jobs).map(([item, job]) => [item, jobOf(job)]));
    this.$el.html(template({
      slides: this.slides, admin: this.admin, message: this.message, busy: this.busy, paint: this.paint, jobs,
      showJobs: Object.keys(jobs).length > 0, detailOf, requestOf,
    }));
    return this;
  },

  _makeSegments() {
    const force = this.$('.hl-force').prop('checked');
    this.busy = true;
    this.message = { kind: 'info', title: 'Starting the segment jobs…' };
    this.render();
    request('POST', `histomics_label/project/${this.folderId}/segments`, { params: force ? { force: 'true' } : {} })
      .then(({ data: started }) => {
        if (this._destroyed) {
          return;
        }
        const jobs = {};
        started.forEach((entry) => {
          if (entry.status === 'started') {
            jobs[entry.item] = { id: entry.job, status: JOB.QUEUED, current: 0, total: 0, message: '' };
          } else {
            jobs[entry.item] = { state: entry.status === 'current' ? 'current' : 'running-elsewhere' };
          }
        });
        this.jobs = jobs;
        const count = started.filter((e) => e.status === 'started').length;
        this.message = { kind: 'info', title: count ? `Making segments for ${count} slide(s)…`
          : 'Every slide\'s segments are up to date.' };
        this.render();
        this._pollJobs();
      }, (error) => {
        if (this._destroyed) {
          return;
        }
        this.busy = false;
        this.message = { kind: 'danger', title: 'Could not start segment generation.', error };
        this.render();
      });
  },

  _pollJobs() {
    const running = Object.entries(this.jobs).filter(([, job]) => job.id && !jobDone(job));
    if (!running.length) {
      this._jobsFinished();
      return;
    }
    Promise.all(running.map(([item, job]) => loadJob(job.id).then((data) => {
      Object.assign(job, { status: data.status, current: data.progress ? data.progress.current : 0,
        total: data.progress ? data.progress.total : 0, message: data.progress ? data.progress.message : '' });
      if (jobFailed(job)) {
        return loadJob(job.id, true).then((full) => { job.error = lastLogLine(full) || 'the job failed'; });
      }
      return item;
    }))).then(() => {
      if (this._destroyed) {
        return;
      }
      this.render();
      const timer = setTimeout(() => {
        this._timers.delete(timer);
        this._pollJobs();
      }, JOB_POLL_MS);
      this._timers.add(timer);
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.busy = false;
      this.message = { kind: 'danger', title: 'Could not follow the segment jobs.', error };
      this.render();
    });
  },

  _jobsFinished() {
    request('GET', `histomics_label/project/${this.folderId}/slides`).then(({ data: slides }) => {
      if (this._destroyed) {
        return;
      }
      this.slides = slides;
      const failed = Object.values(this.jobs).filter(jobFailed).length;
      this.busy = false;
      this.message = failed
        ? { kind: 'danger', title: `${failed} segment job(s) failed.`,
          error: { message: 'The failed job\'s row in the table says why.' } }
        : { kind: 'success', title: 'Segments are ready.' };
      this.render();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.busy = false;
      this.message = { kind: 'danger', title: 'The jobs ended but the slides could not be reloaded.', error };
      this.render();
    });
  },
});

export default SlidesView;
