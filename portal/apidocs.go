package portal

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"sportello/gateway"
	"sportello/messaging/send"
)

// The public API documentation page: a first message with curl, the
// limits and headers, the error model with one anchor per problem type
// (the "type" of every problem+json answer points here), and the OpenAPI
// document.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		root.HandleFunc("/docs/api", a.apiDocsPage).Methods("GET")
	})
}

type apiDocsView struct {
	BaseURL  string
	Problems []apiProblem
	Rules    []apiRule
	OpenAPI  string
	Quota    int
}

// apiProblem is one problem type, its text filled with example values.
type apiProblem struct{ Code, Title, Detail string }

// problemExamples are the sample values shown in problem texts that take
// arguments.
var problemExamples = map[string][]any{
	"cidr":               {"203.0.113.7"},
	"rate_limited":       {150, 5},
	"auth_throttled":     {60, 60},
	"quota_exceeded":     {gateway.DefaultWeeklyQuota},
	"too_large":          {128 << 10},
	"recipient":          {"RSS************X"},
	"method_not_allowed": {"POST"},
}

// apiRule is one row of the validation table; LimitKey, when set, is a
// catalog key for a limit that needs words.
type apiRule struct{ Field, Rule, Limit, LimitKey string }

var apiRules = []apiRule{
	{"fiscal_code", send.RulePattern + ", " + send.RuleCheckChar, "", "gateway.docs.limit.fiscal_code"},
	{"content.subject", send.RuleMinLength + ", " + send.RuleMaxLength + ", " + send.RuleBlank + ", " + send.RuleCharacters, "10–120", ""},
	{"content.markdown", send.RuleMinLength + ", " + send.RuleMaxLength + ", " + send.RuleBlank + ", " + send.RuleCharacters, "80–10000", ""},
	{"time_to_live", send.RuleMin + ", " + send.RuleMax, "", "gateway.docs.limit.ttl"},
	{"content.due_date", send.RuleDateTime, "RFC 3339 (ISO 8601), 2026-12-31T23:59:00+01:00", ""},
	{"content.payment_data.amount", send.RuleRequired + ", " + send.RuleMin + ", " + send.RuleMax + ", " + send.RuleMaxPayment, "", "gateway.docs.limit.amount"},
	{"content.payment_data.notice_number", send.RulePattern, send.NoticeFormat, ""},
	{"content.payment_data.payee.fiscal_code", send.RuleOrgCode, "", "gateway.docs.limit.org_code"},
	{"feature_level_type", send.RuleEnum, "STANDARD | ADVANCED", ""},
}

func (a *App) apiDocsPage(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(a.BaseURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	a.render(w, r, http.StatusOK, "api_docs", &Page{Title: a.T(r, "gateway.docs.title"), Section: "docs",
		Data: apiDocsView{BaseURL: base, Problems: a.apiProblems(r), Rules: apiRules,
			OpenAPI: string(gateway.OpenAPI), Quota: gateway.DefaultWeeklyQuota}})
}

func (a *App) apiProblems(r *http.Request) []apiProblem {
	out := make([]apiProblem, 0, len(gateway.ProblemCodes))
	for _, c := range gateway.ProblemCodes {
		out = append(out, apiProblem{Code: c, Title: a.T(r, "gateway.problem."+c+".title"),
			Detail: a.T(r, "gateway.problem."+c+".detail", problemExamples[c]...)})
	}
	return out
}
