package portal

import (
	"strings"

	"sportello/templates/i18n"
)

// FieldView is what the "field" template needs to draw one labelled input
// with its hint and error.
type FieldView struct {
	Name, Label, Type, Value, Error string
	Required                        bool
	Needed                          bool // not required to save, but to send for review
	Auto, InputMode, Max, Hint      string
	Described                       string // ids for aria-describedby
	Rows                            int
	Options                         []Option
	Preview                         string // data-preview name for the live preview
}

// Option is one entry of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// fieldFunc builds a FieldView from the form and short options so templates
// stay readable: field .Form "email" "register.email" "type=email" "required"
// "auto=email" "hint=register.email.hint" "max=254" "rows=8"
// "options=it:lang.it,en:lang.en" "preview=name".
func fieldFunc(c *i18n.Catalog, lang string) func(f *Form, name, labelKey string, opts ...string) FieldView {
	return func(f *Form, name, labelKey string, opts ...string) FieldView {
		v := FieldView{Name: name, Label: c.T(lang, labelKey), Type: "text", Value: f.Value(name), Error: f.Error(name)}
		for _, o := range opts {
			k, val, _ := strings.Cut(o, "=")
			switch k {
			case "type":
				v.Type = val
			case "required":
				v.Required = true
			case "needed":
				v.Needed = true
			case "auto":
				v.Auto = val
			case "inputmode":
				v.InputMode = val
			case "max":
				v.Max = val
			case "hint":
				v.Hint = c.T(lang, val)
			case "rows":
				for _, d := range val {
					v.Rows = v.Rows*10 + int(d-'0')
				}
			case "preview":
				v.Preview = val
			case "options":
				v.Type = "select"
				for _, pair := range strings.Split(val, ",") {
					ov, ok, _ := strings.Cut(pair, ":")
					v.Options = append(v.Options, Option{Value: ov, Label: c.T(lang, ok), Selected: ov == v.Value})
				}
			}
		}
		if v.Type == "password" {
			v.Value = "" // never echo a password back into the page
		}
		var ids []string
		if v.Hint != "" {
			ids = append(ids, "f-"+name+"-hint")
		}
		if v.Error != "" {
			ids = append(ids, "f-"+name+"-error")
		}
		v.Described = strings.Join(ids, " ")
		return v
	}
}
