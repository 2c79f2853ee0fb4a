// What a slide's row of the project page says about its segment job (slides.pug's `job` mixin): its place in the
// server's heavy-work queue while it waits (GET .../work: position 1 is next to run), "running" with the job's
// progress while it runs, and how it ended. Kept apart from SlidesView, which fetches the job and the queue.

/** Girder job statuses (girder_jobs JobStatus). */
export const JOB = { INACTIVE: 0, QUEUED: 1, RUNNING: 2, SUCCESS: 3, ERROR: 4, CANCELED: 5 };
const JOB_WORDS = { 0: 'waiting', 1: 'queued', 2: 'running', 3: 'done', 4: 'failed', 5: 'canceled' };
/** What a slide's row says when no job was started for it (POST .../segments answered this status). */
const STATE_WORDS = {
  current: 'up to date',
  waiting: 'new segments wait to be applied (below)',
};

/** Whether the job has ended (done, failed or cancelled). */
export function jobDone(job) {
  return [JOB.SUCCESS, JOB.ERROR, JOB.CANCELED].includes(job.status);
}

/** Whether the job ended without its segments (failed or cancelled). */
function jobFailed(job) {
  return job.status === JOB.ERROR || job.status === JOB.CANCELED;
}

/** Whether POST .../segments answered a state rather than a job for the slide. */
export function isState(status) {
  return status in STATE_WORDS;
}

/** English ordinal of a positive integer: 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st, ... */
export function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th');
  return `${n}${suffix}`;
}

/**
 * What a slide's row shows of `job` (`{state}` for a slide without a job, else `{id, status, current, total,
 * message, error}` from GET job/{id}, `unreadable` when the user may not read it) given its queue entry `work`
 * (`{status: 'queued' | 'running', position}` from GET .../work; none once the job left the queue):
 * `{state, text}`, or `{id, word, state, position, cancellable, progress (whether its progress is shown), failed,
 * total, current, percent, message, error}`. An ended job says how it ended, whatever the queue said.
 */
export function jobOf(job, work) {
  if (!job) {
    return null;
  }
  if (isState(job.state)) {
    return { state: job.state, text: STATE_WORDS[job.state] };
  }
  const total = job.total || 0;
  const current = job.current || 0;
  const inQueue = Boolean(work) && !jobDone(job);
  const waits = inQueue && work.status === 'queued';
  let word = JOB_WORDS[job.status] || 'starting';
  if (inQueue) {
    word = waits ? `queued (${ordinal(work.position)} in line)` : 'running';
  }
  // progress means something while the job runs (if the user may read it) and once it ended, unless cancelled
  const progress = inQueue ? !waits && !job.unreadable : job.status !== JOB.CANCELED;
  return {
    id: job.id, word, state: inQueue ? work.status : JOB_WORDS[job.status] || 'starting',
    position: waits ? work.position : null, cancellable: inQueue, progress, failed: jobFailed(job), total, current,
    percent: total ? Math.round((100 * current) / total) : 0, message: job.message, error: job.error,
  };
}
