// Starts Swagger UI on /api/v1/docs. A file, not inline script: the desk's CSP has script-src 'self'.
window.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.dataset.specUrl,
    domNode: node,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false, // a token pasted into "Authorize" stays in this page's memory
  });
});
