// Requests to the plugin's REST API (docs/rest.md). Girder's `restRequest` adds the login token; its default error
// handler is switched off so that each view shows what failed in its own page instead of a transient alert.

const { restRequest } = girder.rest;

/** The folder metadata key that holds a project's configuration (histomics_label/project_config.py). */
export const PROJECT_META_KEY = 'histomicsLabel';

/** A failed request: which path, the HTTP status (0 when the server did not answer) and Girder's message. */
export class RequestError extends Error {
  constructor(path, xhr) {
    const detail = (xhr.responseJSON && xhr.responseJSON.message) || xhr.statusText || 'no answer from the server';
    super(`GET ${path} failed (${xhr.status || 'no response'}): ${detail}`);
    this.name = 'RequestError';
    this.path = path;
    this.status = xhr.status;
  }
}

/** GET an API path (relative to /api/v1) as a native Promise that rejects with a RequestError. */
export function getJson(path) {
  return new Promise((resolve, reject) => {
    restRequest({ url: path, method: 'GET', error: null })
      .done(resolve)
      .fail((xhr) => reject(new RequestError(path, xhr)));
  });
}

/** The client route of a project's page. */
export function projectRoute(folderId) {
  return `histomics_label/project/${folderId}`;
}

/** Whether a folder (as Girder returns it) is configured as a project. */
export function isProject(folder) {
  const meta = folder.meta || {};
  return typeof meta[PROJECT_META_KEY] === 'object' && meta[PROJECT_META_KEY] !== null;
}

/** A project's summary, slides and rounds, fetched together. */
export async function loadProject(folderId) {
  const base = `histomics_label/project/${folderId}`;
  const [project, slides, rounds] = await Promise.all([
    getJson(base), getJson(`${base}/slides`), getJson(`${base}/rounds`),
  ]);
  return { project, slides, rounds: rounds.rounds, training: rounds.state };
}
