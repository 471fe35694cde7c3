// Starts Swagger UI on /docs from the vendored bundle. A file, not an inline script,
// so the page runs under a CSP with script-src 'self'.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    // The public validator is another host: never called.
    validatorUrl: null,
  });
});
