// The interactive API docs: Swagger UI on the app's own OpenAPI document (a file, not an
// inline script: the Content-Security-Policy allows scripts from the app only).
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // BaseLayout: no top bar, whose spec-URL box is of no use here and whose logo carries an
    // inline <style> the policy blocks.
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // no call to an online validator: everything stays local
  });
})();
