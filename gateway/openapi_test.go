package gateway_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"sportello/gateway"
)

// The served document must be a valid OpenAPI 3 document: integrators
// feed it to code generators, which refuse what YAML alone accepts (a
// $ref where a map of headers belongs, a flow mapping split by a comma).
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	// Every route of the gateway is described, with its method.
	for _, route := range []struct{ method, path string }{
		{"POST", "/messages/{fiscal_code}"},
		{"POST", "/messages"},
		{"GET", "/messages/{fiscal_code}/{id}"},
		{"GET", "/profiles/{fiscal_code}"},
		{"POST", "/profiles"},
		{"GET", "/openapi.yaml"},
	} {
		item := doc.Paths.Find(route.path)
		if item == nil || item.GetOperation(route.method) == nil {
			t.Errorf("%s %s is not described", route.method, route.path)
		}
	}
}
