package fiscalcode

import "testing"

func TestPerson(t *testing.T) {
	cases := map[string]string{
		"RSSMRA85T10A562S": "",       // Mario Rossi, a well-known valid example
		"RSSMRA85T10A562T": "check",  // wrong check character
		"RSSMRA85T10A562":  "format", // too short
		"rssmra85t10a562s": "format", // not normalized
		"AAAAAA00A00A000A": "",       // sandbox
		"AAAAAA00A00Y000X": "",       // IO sandbox pattern: no check character to verify
		"ISPXNB32A82Y766X": "",       // IO sandbox pattern
		"ISPXNB32A82Y766Y": "check",  // not the pattern (last letter): verified as a person's
		"ISPXNB32A82Z766X": "check",  // not the pattern (Z, a foreign birthplace): verified
		"RSSMRA85T1LA562S": "check",  // omocodia letter accepted by the pattern, check differs
		"":                 "format",
	}
	for cf, want := range cases {
		if got := Problem(cf); got != want {
			t.Errorf("Problem(%q) = %q, want %q", cf, got, want)
		}
	}
	// Omocodia: the code with L (=0) in place of the last digit and its own check char.
	omo := "RSSMRA85T10A56"
	omo += "2"
	if !ValidPerson(omo + string(CheckChar(omo))) {
		t.Error("computed check char not accepted")
	}
}

func TestOrganization(t *testing.T) {
	for _, s := range []string{"80188230587", "00000000000", "12345678903"} {
		if !ValidOrganization(s) {
			t.Errorf("%s should be valid", s)
		}
	}
	for _, s := range []string{"80188230588", "1234567890", "1234567890A", "123456789012"} {
		if ValidOrganization(s) {
			t.Errorf("%s should be invalid", s)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("RSSMRA85T10A562S"); got != "RSS************S" {
		t.Errorf("Mask = %q", got)
	}
}
