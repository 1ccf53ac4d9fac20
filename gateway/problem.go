package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"sportello/messaging/send"
	"sportello/templates/i18n"
)

// ProblemCodes lists every problem the API answers with; each has catalog
// texts gateway.problem.<code>.title/.detail and a section #problem-<code>
// on the API documentation page (its type URI).
var ProblemCodes = []string{
	"missing_key", "unknown_key", "suspended", "key_suspended", "not_approved", "cidr", "recipient",
	"validation", "bad_json", "bad_body", "too_large", "media_type", "idempotency_mismatch",
	"rate_limited", "auth_throttled", "quota_exceeded", "message_not_found", "profile_not_found", "not_found", "method_not_allowed", "internal",
}

// Rules lists the validation rules of the errors list, for the docs page.
var Rules = []string{
	send.RuleRequired, send.RuleMinLength, send.RuleMaxLength, send.RuleMin, send.RuleMax, send.RulePattern,
	send.RuleCheckChar, send.RuleEnum, send.RuleDateTime, send.RuleMaxPayment, send.RuleConflict, send.RuleOrgCode,
	send.RuleType, send.RuleSyntax, send.RuleUnknownBody, send.RuleEncoding, send.RuleCharacters, send.RuleBlank,
}

// problemDoc is an RFC 9457 problem detail. Errors lists every broken
// field rule so integrators never meet a bare "validation error".
type problemDoc struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Errors []send.FieldError `json:"errors,omitempty"`
}

// lang picks the language of API messages: Accept-Language, Italian by default.
func lang(r *http.Request) string { return i18n.Negotiate(r.Header.Get("Accept-Language")) }

// problem writes a problem+json response. code names the problem: its
// catalog keys are gateway.problem.<code>.title/.detail, and its type is an
// anchor of the public API documentation page.
func (g *Gateway) problem(w http.ResponseWriter, r *http.Request, c *call, status int, code string, errs []send.FieldError, args ...any) {
	l := lang(r)
	for i := range errs {
		errs[i].Message = g.ruleMessage(l, errs[i])
	}
	doc := problemDoc{
		Type:   "/docs/api#problem-" + code,
		Title:  g.cat.T(l, "gateway.problem."+code+".title"),
		Status: status,
		Detail: g.cat.T(l, "gateway.problem."+code+".detail", args...),
		Errors: errs,
	}
	b, _ := json.Marshal(doc)
	if c != nil {
		c.status = status
		c.limits.set(w)
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/problem+json"}
	h["Content-Language"] = []string{l}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ruleMessage explains one broken rule; the catalog texts use explicit
// argument indexes: %[1]s field, %[2]v limit, %[3]v value.
func (g *Gateway) ruleMessage(l string, e send.FieldError) string {
	limit, value := e.Limit, e.Value
	if limit == nil {
		limit = ""
	}
	if value == nil {
		value = ""
	}
	field := e.Field
	if field == "" { // the body as a whole (an array instead of an object)
		field = g.cat.T(l, "gateway.field.body")
	}
	return g.cat.T(l, "gateway.rule."+e.Rule, field, limit, value)
}
