// HistomicsUI's image view as this plugin's panel uses it: the geojs map of the image it shows, and opening another
// image there. HistomicsUI exposes its ImageView class, not the page's instance, so the instance is kept as it is
// made (a wrap of its initialize); one page has one.
const { events } = girder;
const { wrap } = girder.utilities.PluginUtils;

/** How long HistomicsUI may take to open and draw a slide before the panel says it could not. */
const OPEN_TIMEOUT_MS = 60000;

let imageView = null;

/**
 * Keep the instance of HistomicsUI's `ImageView` class as the page makes it, and call `closed()` when the page
 * destroys it (it left for another route).
 */
export function trackImageView(ImageView, closed) {
  wrap(ImageView, 'initialize', function (initialize, ...args) {
    imageView = this;
    return initialize.apply(this, args);
  });
  wrap(ImageView, 'destroy', function (destroy, ...args) {
    if (imageView === this) {
      imageView = null;
      closed();
    }
    return destroy.apply(this, args);
  });
}

/**
 * Whether this page's HistomicsUI image view is the one tracked: HistomicsUI for Girder 5 builds its page from a
 * bundle of its own, and the classes it exposes to plugins are a copy the page never makes (docs/histomicsui.md).
 */
export function imageViewTracked() {
  return Boolean(imageView);
}

/** The geojs map HistomicsUI draws the image `itemId` in, when that image is the one open and drawn; else null. */
export function drawnMap(itemId) {
  const widget = imageView && imageView.model && imageView.model.id === itemId && imageView.viewerWidget;
  return (widget && widget.viewer) || null;
}

/** Whether HistomicsUI still shows the map a SlideViewer adopted (it makes a new map for each image it opens). */
export function stillDrawn(viewer) {
  return drawnMap(viewer.itemId) === viewer.map;
}

/**
 * Open the image `itemId` in HistomicsUI's viewer (through its router, as its own image browser does) unless it is
 * open, and resolve with the geojs map once HistomicsUI says it is drawn (`h:imageOpened`).
 */
export function showImage(itemId) {
  const map = drawnMap(itemId);
  if (map) {
    return Promise.resolve(map);
  }
  const { router } = girder.plugins.histomicsui;
  return new Promise((resolve, reject) => {
    const opened = (image) => {
      const drawn = image && image.id === itemId && drawnMap(itemId);
      if (drawn) {
        finish();
        resolve(drawn);
      }
    };
    const timer = window.setTimeout(() => {
      finish();
      reject(new Error(`HistomicsUI did not open the image within ${OPEN_TIMEOUT_MS / 1000} s`));
    }, OPEN_TIMEOUT_MS);
    const finish = () => {
      window.clearTimeout(timer);
      events.off('h:imageOpened', opened);
    };
    events.on('h:imageOpened', opened);
    router.setQuery('image', itemId, { trigger: true });
  });
}
