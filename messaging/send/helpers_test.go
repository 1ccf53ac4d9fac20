package send

import "time"

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func timeMs(i int) time.Duration { return time.Duration(i) * time.Millisecond }
