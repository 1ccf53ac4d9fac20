package citizen

import (
	"fmt"
	"time"
	_ "time/tzdata" // Europe/Rome must resolve even on hosts without tzdata
)

var monthNames = map[string][12]string{
	"it": {"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"},
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
}

// DueDate formats a message's due_date (RFC 3339; the send path stores it
// in UTC) for a page in lang, as people in Italy read it: the day in
// Rome's time zone with the month's name, and the time when it is not
// midnight — "1 febbraio 2027", "31 dicembre 2026, ore 23:59"; "1 February
// 2027", "31 December 2026, 23:59". Text that is not such a date is
// returned as it is.
func DueDate(lang, s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	t = t.In(rome)
	months, ok := monthNames[lang]
	if !ok {
		lang, months = "it", monthNames["it"]
	}
	out := fmt.Sprintf("%d %s %d", t.Day(), months[t.Month()-1], t.Year())
	if t.Hour() == 0 && t.Minute() == 0 {
		return out
	}
	if lang == "it" {
		return out + t.Format(", ore 15:04")
	}
	return out + t.Format(", 15:04")
}
