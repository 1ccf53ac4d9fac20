package citizen

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"sportello/messaging/preferences"
)

// The services section of the app page: a page of services at a time,
// searchable by service or institution name, with a filter for the
// services whose preference the citizen changed. It listed every service
// with its switch: with 2,000 services, a page of 990 KB in about 60 ms,
// and 2,000 buttons to tab through.
//
// Every visible service is still read (one query) with the citizen's
// stored choices (one query), then searched, filtered and counted here:
// the search folds case and accents as SQLite's LIKE cannot ("citta"
// finds "Città"), and "changed" is preferenceFrom's answer, which SQL
// would have to repeat. Only the page shown is rendered.

const (
	// appServicesPageSize is how many services one page lists.
	appServicesPageSize = 25
	// maxServicesSearch bounds the search text, in characters (longer
	// text is cut: no name is that long).
	maxServicesSearch = 100
	// filterChanged lists only the services the citizen changed.
	filterChanged = "changed"
)

// servicesQuery is what the citizen asked of the list: a search, the
// changed-only filter and a page. It is read from the page's address or,
// for a switch, from its form, and goes back into links and redirects only
// as the query of /citizen/app (link), never as an address of its own.
type servicesQuery struct {
	Q       string
	Changed bool
	Page    int // from 1; past the last page means the last one
}

// servicesQueryFrom reads q, filter and page from v. Anything else than a
// positive page number is page 1; control characters and invalid UTF-8
// are dropped from the search, runs of spaces are one space.
func servicesQueryFrom(v url.Values) servicesQuery {
	q := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(v.Get("q"), ""))
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > maxServicesSearch {
		q = strings.TrimSpace(string(r[:maxServicesSearch]))
	}
	page, err := strconv.Atoi(v.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	return servicesQuery{Q: q, Changed: v.Get("filter") == filterChanged, Page: page}
}

// values is the query keeping this search (empty parts left out).
func (sq servicesQuery) values() url.Values {
	v := url.Values{}
	if sq.Q != "" {
		v.Set("q", sq.Q)
	}
	if sq.Changed {
		v.Set("filter", filterChanged)
	}
	if sq.Page > 1 {
		v.Set("page", strconv.Itoa(sq.Page))
	}
	return v
}

// link is the app page showing this search, at the services list.
func (sq servicesQuery) link() string {
	if v := sq.values(); len(v) > 0 {
		return "/citizen/app?" + v.Encode() + "#services"
	}
	return "/citizen/app#services"
}

// servicesList is the services section as the template shows it.
type servicesList struct {
	servicesQuery
	Total      int // services the citizen may see, before any search
	Matches    int // services matching the search
	ChangedN   int // of those, the ones the citizen changed
	Shown      int // of those, the ones in the chosen filter (Matches or ChangedN)
	Pages      int
	Items      []serviceToggle
	Prev, Next string // links, empty where there is no such page
	AllURL     string // the search among all services
	ChangedURL string // the search among the changed ones
	ClearURL   string // no search, same filter
	Saved      *serviceToggle
}

// listedService is a row of the list before paging: the service, the
// preference that applies and whether it is a test service.
type listedService struct {
	row     *serviceRow
	name    string
	test    bool
	pref    ServicePreference
	changed bool
}

// buildServicesList searches, filters, counts and pages services
// (already in the order shown) for sq. saved is the public id of the
// service the citizen just switched, if any.
func buildServicesList(services []listedService, sq servicesQuery, saved string) servicesList {
	out := servicesList{servicesQuery: sq, Total: len(services)}
	words := strings.Fields(foldText(sq.Q))
	var shown []*listedService
	for i := range services {
		s := &services[i]
		if s.row.PublicID == saved && saved != "" {
			t := s.toggle()
			out.Saved = &t
		}
		if len(words) > 0 && !matchesAll(foldText(s.name+" "+s.row.OrgName), words) {
			continue
		}
		out.Matches++
		if s.changed {
			out.ChangedN++
		}
		if !sq.Changed || s.changed {
			shown = append(shown, s)
		}
	}
	out.Shown = len(shown)
	out.Pages = max(1, (len(shown)+appServicesPageSize-1)/appServicesPageSize)
	out.Page = min(sq.Page, out.Pages)
	for _, s := range shown[(out.Page-1)*appServicesPageSize : min(len(shown), out.Page*appServicesPageSize)] {
		out.Items = append(out.Items, s.toggle())
	}
	at := func(page int, changed bool) string {
		q := sq
		q.Page, q.Changed = page, changed
		return q.link()
	}
	if out.Page > 1 {
		out.Prev = at(out.Page-1, sq.Changed)
	}
	if out.Page < out.Pages {
		out.Next = at(out.Page+1, sq.Changed)
	}
	out.AllURL, out.ChangedURL = at(1, false), at(1, true)
	out.ClearURL = servicesQuery{Changed: sq.Changed}.link()
	return out
}

func (s *listedService) toggle() serviceToggle {
	return serviceToggle{ID: s.row.PublicID, Name: s.name, Org: s.row.OrgName, Test: s.test, Pref: s.pref, Changed: s.changed}
}

// changedFromDefault says whether pref differs from what the mode gives a
// service the citizen made no choice for: every channel on in AUTO (and
// LEGACY, where a block is the change), off in MANUAL.
func changedFromDefault(mode string, pref ServicePreference) bool {
	def := mode != preferences.Manual
	return pref.IsInboxEnabled != def || pref.IsEmailEnabled != def || pref.IsWebhookEnabled != def
}

// accents folds the accented letters of Italian (and its neighbours) and
// the typographic apostrophe, so that "citta" finds "Città" and
// "d'identita" finds "d’identità".
var accents = strings.NewReplacer(
	"à", "a", "á", "a", "â", "a", "ä", "a", "è", "e", "é", "e", "ê", "e", "ë", "e",
	"ì", "i", "í", "i", "î", "i", "ï", "i", "ò", "o", "ó", "o", "ô", "o", "ö", "o",
	"ù", "u", "ú", "u", "û", "u", "ü", "u", "ç", "c", "ñ", "n", "’", "'", "‘", "'")

func foldText(s string) string { return accents.Replace(strings.ToLower(s)) }

// matchesAll says whether every word is in text (in any order: "tari
// roma" finds the TARI of the Comune di Roma).
func matchesAll(text string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// groupDigits writes n with the thousands separator of lang: 2.000 in
// Italian, 2,000 in English.
func groupDigits(lang string, n int) string {
	s := strconv.Itoa(n)
	sep := "."
	if lang == "en" {
		sep = ","
	}
	start := 0
	if n < 0 {
		start = 1
	}
	var b strings.Builder
	b.WriteString(s[:start])
	for i := start; i < len(s); i++ {
		if i > start && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
