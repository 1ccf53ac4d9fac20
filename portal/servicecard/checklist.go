package servicecard

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Item states.
const (
	Todo          = "todo"
	Done          = "done"
	NotApplicable = "na"
)

// ItemDef describes one question of the privacy assessment and the extra
// fields it asks for when marked done.
type ItemDef struct {
	ID     string
	Fields []ItemField
	// NAAllowed is false for items that always apply (the platform's
	// data-processing terms must be accepted).
	NAAllowed bool
}

// ItemField is an extra input of an item.
type ItemField struct {
	Name     string
	Kind     string   // "select", "text", "textarea", "checks", "accept"
	Options  []string // for select and checks
	Required bool     // required when the item is done
}

// LegalBases are GDPR art. 6(1) letters a–f.
var LegalBases = []string{"consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"}

// DataCategories a message may carry; "special" (art. 9) and "judicial"
// (art. 10) force secure channels.
var DataCategories = []string{"identity", "contact", "payment", "administrative", "special", "judicial"}

// Items is the checklist, in order. At least the nine questions of the
// issue; their texts live in the i18n catalog under checklist.<id>.*.
var Items = []ItemDef{
	{ID: "legal_basis", NAAllowed: false, Fields: []ItemField{
		{Name: "basis", Kind: "select", Options: LegalBases, Required: true},
		{Name: "mandate", Kind: "textarea", Required: true},
	}},
	{ID: "data_categories", NAAllowed: false, Fields: []ItemField{
		{Name: "categories", Kind: "checks", Options: DataCategories, Required: true},
	}},
	{ID: "privacy_notice", NAAllowed: false},
	{ID: "controller_dpo", NAAllowed: false, Fields: []ItemField{
		{Name: "controller", Kind: "text", Required: true},
		{Name: "dpo_contact", Kind: "text", Required: true},
	}},
	{ID: "retention", NAAllowed: false, Fields: []ItemField{
		{Name: "period", Kind: "text", Required: true},
	}},
	{ID: "minimisation", NAAllowed: true},
	{ID: "dpia", NAAllowed: true, Fields: []ItemField{
		{Name: "outcome", Kind: "select", Options: []string{"done", "not_required"}, Required: true},
	}},
	{ID: "staff", NAAllowed: false},
	{ID: "dpa_terms", NAAllowed: false, Fields: []ItemField{
		{Name: "accepted", Kind: "accept", Required: true},
	}},
}

// ItemByID returns an item definition.
func ItemByID(id string) (ItemDef, bool) {
	for _, it := range Items {
		if it.ID == id {
			return it, true
		}
	}
	return ItemDef{}, false
}

// ItemState is the recorded answer to one item.
type ItemState struct {
	State         string            `json:"state"`
	Fields        map[string]string `json:"fields,omitempty"`
	Justification string            `json:"justification,omitempty"` // why not applicable
	Evidence      string            `json:"evidence,omitempty"`      // URL or note
	ChangedBy     int64             `json:"changed_by,omitempty"`
	ChangedByName string            `json:"changed_by_name,omitempty"`
	ChangedAt     time.Time         `json:"changed_at,omitzero"`
}

// Checklist maps item id → state; a missing id is "to do".
type Checklist map[string]ItemState

// Get returns the state of an item (to do when never answered).
func (c Checklist) Get(id string) ItemState {
	if s, ok := c[id]; ok {
		return s
	}
	return ItemState{State: Todo}
}

// Progress counts the items answered (done or justified not applicable).
func (c Checklist) Progress() (answered, total int) {
	for _, it := range Items {
		if s := c.Get(it.ID); s.State == Done || s.State == NotApplicable {
			answered++
		}
	}
	return answered, len(Items)
}

// Pending lists the ids of items still to do.
func (c Checklist) Pending() []string {
	var out []string
	for _, it := range Items {
		if s := c.Get(it.ID); s.State != Done && s.State != NotApplicable {
			out = append(out, it.ID)
		}
	}
	return out
}

// ForcesSecure reports whether the declared data categories require secure
// channels (special categories or judicial data: no content in e-mails).
func (c Checklist) ForcesSecure() bool {
	cats := c.Get("data_categories").Fields["categories"]
	for _, v := range strings.Split(cats, ",") {
		if v == "special" || v == "judicial" {
			return true
		}
	}
	return false
}

// ValidateItem checks a new answer to an item against its definition and
// the card (the privacy notice item needs the card's privacy URL). It
// returns field → problem.
func ValidateItem(def ItemDef, s ItemState, card *Card) Problems {
	p := Problems{}
	switch s.State {
	case Todo:
		return p
	case NotApplicable:
		if !def.NAAllowed {
			p.add("state", "checklist.na_not_allowed")
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(s.Justification)); n < 10 {
			p.add("justification", "checklist.justification_required")
		}
	case Done:
		for _, f := range def.Fields {
			v := strings.TrimSpace(s.Fields[f.Name])
			if f.Required && v == "" {
				p.add("f_"+f.Name, "checklist.field_required")
				continue
			}
			switch f.Kind {
			case "select":
				if !contains(f.Options, v) {
					p.add("f_"+f.Name, "checklist.field_required")
				}
			case "checks":
				for _, c := range strings.Split(v, ",") {
					if !contains(f.Options, c) {
						p.add("f_"+f.Name, "checklist.field_required")
					}
				}
			}
		}
		if def.ID == "privacy_notice" && (card == nil || card.PrivacyURL == "") {
			p.add("state", "checklist.privacy_url_first")
		}
		if def.ID == "dpia" && s.Fields["outcome"] == "done" && !ValidURL(strings.TrimSpace(s.Evidence)) {
			p.add("evidence", "checklist.dpia_link")
		}
		if def.ID == "dpia" && s.Fields["outcome"] == "not_required" && utf8.RuneCountInString(strings.TrimSpace(s.Justification)) < 10 {
			p.add("justification", "checklist.dpia_why")
		}
	default:
		p.add("state", "checklist.state.invalid")
	}
	if utf8.RuneCountInString(s.Evidence) > 2000 || utf8.RuneCountInString(s.Justification) > 2000 {
		p.add("evidence", "card.err.too_long", 2000)
	}
	for _, v := range s.Fields {
		if utf8.RuneCountInString(v) > 2000 {
			p.add("state", "card.err.too_long", 2000)
		}
	}
	return p
}
