package gateway

import (
	_ "embed"
	"net/http"
	"strconv"
)

// OpenAPI is the API description, also rendered by the portal's docs page.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(OpenAPI)))
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
