package send

import (
	"crypto/rand"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character ULID-like id: 48 bits of milliseconds then
// 80 random bits, Crockford base32. Time first keeps inserts appending to
// the messages B-tree instead of splitting pages all over it.
func NewID(now time.Time) string {
	b := timePrefix(now)
	_, _ = rand.Read(b[6:]) // crypto/rand does not fail on supported platforms
	return encodeID(b)
}

// IDFloor is the smallest id NewID can return at t: ids sort by time, so
// "id >= IDFloor(t)" selects the messages accepted since t through the
// messages(service_id, id) index, with no index on created_at.
func IDFloor(t time.Time) string {
	return encodeID(timePrefix(t))
}

// timePrefix is an id's 16 bytes with the 48-bit millisecond time in front
// (big-endian, so ids sort by time) and zeros after it.
func timePrefix(t time.Time) [16]byte {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return b
}

func encodeID(b [16]byte) string {
	var out [26]byte
	// 128 bits → 26 base32 digits (the first carries 3 bits).
	var acc uint64
	var bits uint
	j := 25
	for i := 15; i >= 0; i-- {
		acc |= uint64(b[i]) << bits
		bits += 8
		for bits >= 5 {
			out[j] = crockford[acc&31]
			acc >>= 5
			bits -= 5
			j--
		}
	}
	out[0] = crockford[acc&31]
	return string(out[:])
}
