// Requests to the plugin's REST API (docs/rest.md). Girder's `restRequest` adds the login token; its default error
// handler is switched off so that each view shows what failed in its own page instead of a transient alert.

const { restRequest } = girder.rest;

/** The folder metadata key that holds a project's configuration (histomics_label/project_config.py). */
export const PROJECT_META_KEY = 'histomicsLabel';

/** A failed request: which path, the HTTP status (0 when the server did not answer) and Girder's message. */
export class RequestError extends Error {
  constructor(path, xhr, method = 'GET') {
    const detail = (xhr.responseJSON && xhr.responseJSON.message) || xhr.statusText || 'no answer from the server';
    super(`${method} ${path} failed (${xhr.status || 'no response'}): ${detail}`);
    this.name = 'RequestError';
    this.path = path;
    this.method = method;
    this.status = xhr.status;
  }
}

/**
 * A request to an API path (relative to /api/v1) as a native Promise of `{data, xhr}` that rejects with a
 * RequestError. `json` is sent as a JSON body; `params` go in the query string.
 */
export function request(method, path, { params, json } = {}) {
  const query = params ? `?${new URLSearchParams(params).toString()}` : '';
  const url = `${path}${query}`;
  const options = { url, method, error: null };
  if (json !== undefined) {
    options.data = JSON.stringify(json);
    options.contentType = 'application/json';
    options.processData = false;
  }
  return new Promise((resolve, reject) => {
    restRequest(options)
      .done((data, status, xhr) => resolve({ data, xhr }))
      .fail((xhr) => reject(new RequestError(url, xhr, method)));
  });
}

/** GET an API path (relative to /api/v1) as a native Promise that rejects with a RequestError. */
export function getJson(path) {
  return request('GET', path).then(({ data }) => data);
}

/** The client route of a project's page. */
export function projectRoute(folderId) {
  return `histomics_label/project/${folderId}`;
}

/** The client route of a project's guided labeling view. */
export function labelRoute(folderId) {
  return `${projectRoute(folderId)}/label`;
}

/** The client route of a project's review view. */
export function reviewRoute(folderId) {
  return `${projectRoute(folderId)}/review`;
}

/** The client route of painting one slide of a project (the bulk labeling view). */
export function paintRoute(folderId, itemId) {
  return `${projectRoute(folderId)}/paint/${itemId}`;
}

/** The URL of an API path (such as a suggestion's `thumbnail`) for an `<img src>`; the login cookie authorizes it. */
export function apiUrl(path) {
  const root = girder.rest.getApiRoot().replace(/\/$/, '');
  return `${root}/${path.replace(/^\//, '')}`;
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

/** GET an API path as bytes (an ArrayBuffer), for binary answers such as a slide's segment overlay. */
export async function getBytes(path) {
  const token = girder.auth && girder.auth.getCurrentToken ? girder.auth.getCurrentToken() : null;
  let response;
  try {
    const headers = token ? { 'Girder-Token': token } : {};
    response = await fetch(apiUrl(path), { credentials: 'same-origin', headers });
  } catch (error) {
    throw new RequestError(path, { status: 0, statusText: error.message });
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).message || detail;
    } catch (error) {
      // not a JSON error body: keep the status text
    }
    throw new RequestError(path, { status: response.status, responseJSON: { message: detail } });
  }
  return response.arrayBuffer();
}

/** The client route of one segment on its slide in the painting view, outlined; `from` (review or label) adds a
 * Back button that returns there. */
export function segmentRoute(folderId, itemId, segment, from) {
  return `${paintRoute(folderId, itemId)}?segment=${segment}${from ? `&from=${from}` : ''}`;
}
