package gateway

import (
	"errors"
	"net/http"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

// getProfile is IO's getProfile (GET /profiles/{fiscal_code}) and its POST
// form (fiscal code in the body, out of URLs and access logs).
func (g *Gateway) getProfile(w http.ResponseWriter, r *http.Request, c *call) {
	cf := r.PathValue("fiscal_code")
	if r.Method == http.MethodPost {
		var body struct {
			FiscalCode string `json:"fiscal_code"`
		}
		_, release, ok := g.readJSON(w, r, c, &body)
		if !ok {
			return
		}
		release()
		cf = body.FiscalCode
	}
	if errs := send.CheckFiscalCode("fiscal_code", cf); len(errs) > 0 {
		g.problem(w, r, c, http.StatusBadRequest, "validation", errs)
		return
	}
	// As in IO, a test key cannot probe who is registered: 403 for anyone
	// outside its recipients, before looking.
	if !c.recipientAllowed(cf) {
		g.problem(w, r, c, http.StatusForbidden, "recipient", nil, fiscalcode.Mask(cf))
		return
	}
	g.countedRead(w, r, c, func() (int, any, error) {
		p, err := g.store.Profile(r.Context(), c.sender(), cf)
		if errors.Is(err, db.ErrNotFound) {
			return http.StatusNotFound, "profile_not_found", nil
		}
		return http.StatusOK, p, err
	})
}
