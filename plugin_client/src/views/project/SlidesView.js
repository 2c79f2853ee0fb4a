// The slides section of the project page: the slides with their segment counts and Paint links; each slide's segment
// job while it is queued or running: its place in the server's heavy-work queue (GET .../work), then its progress
// (GET job/{id}), polled until the project has no work left, then the slides reloaded for their new counts; for
// admins the Make segments button (POST .../segments: a job per slide, queued), a Cancel button on each queued or
// running job, whoever started it (POST .../work/{job}/cancel) and the carry-over reports of labeled slides
// whose new segments wait to be applied, with the stale labels (ResegmentationView).
import { request } from '../../api.js';
import { LiveView, detailOf, requestOf } from '../common.js';
import ResegmentationView from './ResegmentationView.js';
import { JOB, isState, jobDone, jobOf } from './segmentJobs.js';
import template from './slides.pug';

/** How often the queue and the jobs in it are polled (ms). */
const JOB_POLL_MS = 1000;

function loadJob(jobId, withLog = false) {
  return request('GET', `job/${jobId}`, { params: withLog ? { includeLog: 'true' } : undefined })
    .then(({ data }) => data);
}

/** The last non-empty line of a job's log (why it failed). */
function lastLogLine(job) {
  const lines = (job.log || []).join('').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] || '';
}

/**
 * A job the row follows, before its first poll; `unreadable`: the user may not read it (a Girder job is its
 * creator's: the project's readers see only its place in the queue, not its progress).
 */
function newJob(id, unreadable = false) {
  return { id, status: JOB.QUEUED, current: 0, total: 0, message: '', unreadable };
}

const SlidesView = LiveView.extend({
  events: {
    'click .hl-make-segments': '_makeSegments',
    'click .hl-cancel-job': '_cancelJob',
  },

  /**
   * `folderId` is the project's, `slides` its slides (GET .../slides), `notSlides` the folder's items that are not
   * slides, with why (GET .../project's `notSlides`), `admin` whether the user makes segments and
   * cancels jobs, `paint(itemId)` the route of painting a slide (null without write access). Work queued or running
   * when the page opens is shown and followed at once.
   */
  initialize({ folderId, slides, notSlides, admin, paint }) {
    Object.assign(this, { folderId, slides, notSlides: notSlides || [], admin, paint });
    this.jobs = {}; // by item id: the job each row follows, or the state POST .../segments answered
    this.work = {}; // by item id: the project's queue entries (GET .../work) at the last poll
    this.cancelling = new Set(); // job ids whose cancel request is on its way
    this.message = null;
    this.busy = false;
    this._timer = null;
    this._polling = false;
    this._pollAgain = false;
    this.carry = admin ? new ResegmentationView({ parentView: this, folderId }) : null;
    if (this.carry) {
      this.listenTo(this.carry, 'hl:segmentsChanged', this._reloadSlides);
    }
    this.render();
    this._poll(true);
  },

  destroy(...args) {
    clearTimeout(this._timer);
    return LiveView.prototype.destroy.apply(this, args);
  },

  render() {
    const jobs = Object.fromEntries(Object.entries(this.jobs).map(([item, job]) => [item, jobOf(job, this.work[item])]));
    if (this.carry) {
      this.carry.$el.detach(); // out of the way of `html()`, which would drop the events of every element it replaces
    }
    this.$el.html(template({
      slides: this.slides, notSlides: this.notSlides, admin: this.admin, message: this.message, busy: this.busy, paint: this.paint, jobs,
      showJobs: Object.keys(jobs).length > 0, cancelling: this.cancelling, detailOf, requestOf,
    }));
    if (this.carry) {
      this.$('.hl-resegmentation-body').append(this.carry.$el); // one view, kept across the section's redraws
    }
    return this;
  },

  _makeSegments() {
    const force = this.$('.hl-force').prop('checked');
    this.busy = true;
    this.message = { kind: 'info', title: 'Starting the segment jobs…' };
    this.render();
    request('POST', `histomics_label/project/${this.folderId}/segments`, { params: force ? { force: 'true' } : {} })
      .then(({ data: answer }) => {
        if (this._destroyed) {
          return;
        }
        this.jobs = {};
        this.work = {};
        answer.forEach((entry) => {
          if (isState(entry.status)) {
            this.jobs[entry.item] = { state: entry.status };
          } else { // started now, or the slide's job already queued or running
            this.jobs[entry.item] = newJob(entry.job);
            this.work[entry.item] = { status: entry.position === 0 ? 'running' : 'queued', position: entry.position };
          }
        });
        const count = answer.filter((e) => !isState(e.status)).length;
        const others = this.notSlides.length ? ` ${this.notSlides.length} item(s) of the folder are not slides and `
          + 'were left out: see why below the slides.' : '';
        this.message = { kind: 'info', title: (count ? `Making segments for ${count} slide(s)…`
          : 'Every slide\'s segments are up to date.') + others };
        this.render();
        this._poll();
      }, (error) => {
        if (this._destroyed) {
          return;
        }
        this.busy = false;
        this.message = { kind: 'danger', title: 'Could not start segment generation.', error };
        this.render();
      });
  },

  /** Cancel the clicked row's job (queued: it leaves the queue; running: its child process is killed), then poll. */
  _cancelJob(event) {
    const jobId = event.currentTarget.dataset.job;
    this.cancelling.add(jobId);
    this.render();
    request('POST', `histomics_label/project/${this.folderId}/work/${jobId}/cancel`).then(() => {
      if (this._destroyed) {
        return;
      }
      this.cancelling.delete(jobId);
      this._poll();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.cancelling.delete(jobId);
      this.message = { kind: 'danger', title: 'Could not cancel the segment job.', error };
      this.render();
    });
  },

  /**
   * One poll: the project's queue (GET .../work), then every followed job that has not ended (GET job/{id}), work
   * queued by anyone followed too; again after JOB_POLL_MS while the queue holds any of the project's work, else
   * the end (`_jobsFinished`). A poll asked for while one runs comes right after it. `quiet`: the page just opened,
   * so an empty queue ends nothing.
   */
  _poll(quiet = false) {
    if (this._polling) {
      this._pollAgain = true;
      return;
    }
    clearTimeout(this._timer);
    this._polling = true;
    request('GET', `histomics_label/project/${this.folderId}/work`).then(({ data }) => {
      const entries = data.work.filter((entry) => entry.item);
      this.work = Object.fromEntries(entries.map((entry) => [entry.item, entry]));
      entries.forEach((entry) => {
        const followed = this.jobs[entry.item];
        if (!followed || followed.id !== entry.job) {
          this.jobs[entry.item] = newJob(entry.job, !this.admin);
        }
      });
      Object.entries(this.jobs).forEach(([item, job]) => {
        if (job.unreadable && !this.work[item]) { // it left the queue: how it ended is its creator's to read
          delete this.jobs[item];
        }
      });
      const open = Object.values(this.jobs).filter((job) => job.id && !job.unreadable && !jobDone(job));
      return Promise.all(open.map((job) => this._refreshJob(job))).then(() => entries.length > 0);
    }).then((active) => {
      this._polling = false;
      if (this._destroyed) {
        return;
      }
      if (this._pollAgain) { // jobs were started or cancelled meanwhile: what this poll saw is already old
        this._pollAgain = false;
        this._poll();
        return;
      }
      if (!active) {
        if (!quiet || Object.keys(this.jobs).length) {
          this._jobsFinished();
        }
        return;
      }
      this.busy = true;
      this.render();
      this._timer = setTimeout(() => this._poll(), JOB_POLL_MS);
    }, (error) => {
      this._polling = false;
      if (this._destroyed) {
        return;
      }
      this.busy = false;
      this.message = { kind: 'danger', title: 'Could not follow the segment jobs.', error };
      this.render();
    });
  },

  /**
   * Read the job's status and progress into `job`, and the last line of its log once it failed. A job the user may
   * not read (another admin's) is marked `unreadable` and shown by its place in the queue only.
   */
  _refreshJob(job) {
    return loadJob(job.id).then((data) => {
      Object.assign(job, { status: data.status, current: data.progress ? data.progress.current : 0,
        total: data.progress ? data.progress.total : 0, message: data.progress ? data.progress.message : '' });
      if (job.status === JOB.ERROR) {
        return loadJob(job.id, true).then((full) => { job.error = lastLogLine(full) || 'the job failed'; });
      }
      return null;
    }, (error) => {
      if (error.status !== 403) {
        throw error;
      }
      job.unreadable = true;
    });
  },

  /** Read the slides again (GET .../slides) into `slides`; answers whether the view is still open. */
  _fetchSlides() {
    return request('GET', `histomics_label/project/${this.folderId}/slides`).then(({ data: slides }) => {
      if (this._destroyed) {
        return false;
      }
      this.slides = slides;
      return true;
    });
  },

  /** The slides again, for their segment counts after new segments were applied. */
  _reloadSlides() {
    this._fetchSlides().then((open) => {
      if (open) {
        this.render();
      }
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.message = { kind: 'danger', title: 'Could not reload the slides.', error };
      this.render();
    });
  },

  _jobsFinished() {
    this._fetchSlides().then((open) => {
      if (!open) {
        return;
      }
      if (this.carry) {
        this.carry.reload();
      }
      const jobs = Object.values(this.jobs);
      const failed = jobs.filter((job) => job.status === JOB.ERROR).length;
      const cancelled = jobs.filter((job) => job.status === JOB.CANCELED).length;
      this.busy = false;
      if (failed) {
        this.message = { kind: 'danger', title: `${failed} segment job(s) failed.`,
          error: { message: 'The failed job\'s row in the table says why.' } };
      } else if (cancelled) {
        const others = jobs.some((job) => job.status === JOB.SUCCESS) ? '; the other slides\' segments are ready' : '';
        this.message = { kind: 'warning', title: `${cancelled} segment job(s) cancelled${others}.` };
      } else {
        this.message = { kind: 'success', title: 'Segments are ready.' };
      }
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
