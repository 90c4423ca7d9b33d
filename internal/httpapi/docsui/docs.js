// Starts Swagger UI on the docs page. A file of its own, not an inline
// script, so the page's Content-Security-Policy can be script-src 'self'.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    // BaseLayout: no top bar, so no box to load another document from an
    // arbitrary URL and no online validator badge.
    layout: "BaseLayout",
    // Never call validator.swagger.io: the page talks to this server only.
    validatorUrl: "none",
    // Configuration comes from here alone, never from the page's query.
    queryConfigEnabled: false,
    // The bearer token given to Authorize lives in memory only; with true
    // Swagger UI would copy it to localStorage.
    persistAuthorization: false,
    // Operation links in the fragment (#/Tag/operation-id), never a token.
    deepLinking: true,
    displayRequestDuration: true,
    filter: true,
    tryItOutEnabled: false,
    defaultModelsExpandDepth: 0
  });
})();
