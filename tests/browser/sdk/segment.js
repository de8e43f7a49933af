// The real @segment/analytics-next, bundled unchanged (tests/browser/test_browser_sdks.py
// builds this with the project's esbuild). Its settings are given here, as a customer
// self-hosting its settings would: nothing is fetched from Segment's CDN.
import { AnalyticsBrowser } from "@segment/analytics-next";

window.loadSegment = (writeKey, apiHost, batching) => {
  const segmentIo = {
    apiKey: writeKey,
    apiHost,
    protocol: "http",
    ...(batching ? { deliveryStrategy: { strategy: "batching", config: { size: 3, timeout: 300 } } } : {}),
  };
  // A buffered instance: calls made before it has loaded are replayed once it has.
  window.analytics = AnalyticsBrowser.load(
    { writeKey, cdnSettings: { integrations: { "Segment.io": segmentIo }, metrics: { host: apiHost, sampleRate: 1 } } },
    { integrations: { "Segment.io": segmentIo } },
  );
};
