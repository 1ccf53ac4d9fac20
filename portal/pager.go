package portal

import (
	"net/http"
	"net/url"
	"strconv"
)

// maxPage bounds ?page=N, so an OFFSET is never more than maxPage pages.
const maxPage = 100_000

// pageOf reads ?page=N (1 when absent or not a positive number).
func pageOf(r *http.Request) int {
	p, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || p < 1 {
		return 1
	}
	return min(p, maxPage)
}

// onePage cuts rows, read with LIMIT size+1, to one page and says whether
// another page follows.
func onePage[T any](rows []T, size int) ([]T, bool) {
	if len(rows) > size {
		return rows[:size], true
	}
	return rows, false
}

// pageURL is the link to page p of path, keeping the filters in keep
// (empty ones left out).
func pageURL(path string, keep url.Values, p int) string {
	v := url.Values{}
	for k, vs := range keep {
		if len(vs) > 0 && vs[0] != "" {
			v.Set(k, vs[0])
		}
	}
	if p > 1 {
		v.Set("page", strconv.Itoa(p))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// pageLinks returns the links to the page before and after page of path
// (empty where there is none), keeping the filters in keep.
func pageLinks(path string, keep url.Values, page int, more bool) (prev, next string) {
	if page > 1 {
		prev = pageURL(path, keep, page-1)
	}
	if more {
		next = pageURL(path, keep, page+1)
	}
	return prev, next
}
