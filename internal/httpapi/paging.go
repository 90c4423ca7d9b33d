package httpapi

import (
	"encoding/base64"
	"slices"

	"github.com/gatehouse-auth/gatehouse"
)

// errStaleCursor answers a well-formed cursor whose item is no longer in
// the list (a session that ended, a device removed, a role deleted since
// the page was read): its place in the order is unknown, so the client
// starts again rather than silently missing or repeating items.
var errStaleCursor = gatehouse.InvalidField("query.cursor",
	"cursor names an item that is no longer listed; start again without a cursor")

// pageList answers one page of all, a list small enough to read whole and
// already in its final, stable order: up to in.Limit items that follow the
// one the cursor names (from the first when there is no cursor), mapped
// through body, and the cursor of the next page (the encoded id of the
// page's last item; nil on the last page). A malformed or stale cursor is
// a validation error naming query.cursor. in.Limit is at least 1 (Huma
// enforces pageInput's minimum).
func pageList[R, I any](all []R, in *pageInput, body func(R) I, id func(R) string) ([]I, *string, error) {
	after, malformed := decodeCursor(in.Cursor)
	if malformed != nil {
		// decodeCursor admits only the UUID-shaped ids we issue, but a few
		// items have others (the system roles' "role_admin"...). Here the
		// cursor is only compared with the list's ids, never sent to a
		// query, so the id of any listed item will do.
		b, err := base64.RawURLEncoding.DecodeString(in.Cursor)
		if err != nil {
			return nil, nil, malformed
		}
		after = string(b)
	}
	rest := all
	if after != "" {
		i := slices.IndexFunc(all, func(r R) bool { return id(r) == after })
		switch {
		case i < 0 && malformed != nil:
			return nil, nil, malformed
		case i < 0:
			return nil, nil, errStaleCursor
		}
		rest = all[i+1:]
	}
	items, next := pageOf(rest, in.Limit, body, id)
	return items, next, nil
}
