// Package e2e drives the real Sportello binary in Chromium: the onboarding
// journey as a person would do it, an accessibility check (axe-core) on
// every page visited, a layout check at phone width, and screenshots.
//
// Run it with
//
//	go test ./e2e
//
// It needs a Chromium binary ($CHROME_PATH, or chromium / chromium-browser
// in PATH) and axe-core (npm install --prefix e2e/node axe-core@4). Without
// Chromium the tests skip, unless SPORTELLO_E2E_REQUIRED is set (CI sets it).
//
// Regenerate the screenshots committed under docs/screenshots with
//
//	SPORTELLO_SCREENSHOTS=docs/screenshots go test ./e2e -run Journey
package e2e
