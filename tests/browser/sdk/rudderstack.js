// The real @rudderstack/analytics-js (v3, its build with the plugins bundled), unchanged
// (tests/browser/test_browser_sdks.py builds it with the project's esbuild). The source
// configuration is given here, so nothing is fetched from RudderStack's CDN.
import { RudderAnalytics } from "@rudderstack/analytics-js/bundled";

window.loadRudderStack = (writeKey, dataPlaneUrl) => {
  const analytics = new RudderAnalytics();
  analytics.load(writeKey, dataPlaneUrl, {
    getSourceConfig: () => ({
      isHosted: true,
      source: {
        id: "customer-site", name: "Customer site", writeKey, enabled: true, workspaceId: "local",
        config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
        destinations: [],
      },
    }),
    polyfillIfRequired: false,
    loadIntegration: false,
    uaChTrackLevel: "none",
  });
  window.rudderanalytics = analytics;
};
