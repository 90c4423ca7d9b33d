package httpapi

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
)

// pageList pages an in-memory list: every item once, in order, with the
// encoded id of each page's last item as the cursor and nil at the end.
func TestPageList(t *testing.T) {
	type row struct{ id string }
	rowID := func(r row) string { return r.id }
	label := func(r row) string { return "item " + r.id }

	for _, n := range []int{0, 1, 2, 3, 5} {
		all := make([]row, n)
		want := make([]string, n)
		for i := range all {
			all[i] = row{gatehouse.NewID()}
			want[i] = label(all[i])
		}
		for _, limit := range []int{1, 2, 3, 200} {
			t.Run(strconv.Itoa(n)+"/"+strconv.Itoa(limit), func(t *testing.T) {
				got := []string{}
				in := &pageInput{Limit: limit}
				for pages := 0; ; pages++ {
					require.Less(t, pages, n+2, "the walk never ends")
					items, next, err := pageList(all, in, label, rowID)
					require.NoError(t, err)
					require.NotNil(t, items, "items is [] rather than null")
					require.LessOrEqual(t, len(items), limit)
					got = append(got, items...)
					if next == nil {
						break
					}
					require.Len(t, items, limit, "only the last page is short")
					require.Equal(t, encodeCursor(all[len(got)-1].id), *next, "the cursor is the page's last id")
					in = &pageInput{Limit: limit, Cursor: *next}
				}
				require.Equal(t, want, got)
			})
		}
	}

	all := []row{{gatehouse.NewID()}, {gatehouse.NewID()}}
	for _, c := range []string{"garbage", encodeCursor("not-an-id"), encodeCursor(gatehouse.NewID())} {
		_, _, err := pageList(all, &pageInput{Limit: 1, Cursor: c}, label, rowID)
		var ge *gatehouse.Error
		require.ErrorAs(t, err, &ge, c)
		require.Equal(t, gatehouse.CodeValidationFailed, ge.Code, c)
		require.Len(t, ge.Fields, 1, c)
		require.Equal(t, "query.cursor", ge.Fields[0].Location, c)
	}
	_, _, err := pageList(all, &pageInput{Limit: 1, Cursor: encodeCursor(gatehouse.NewID())}, label, rowID)
	require.ErrorIs(t, err, errStaleCursor, "a well-formed id that is not listed is stale")

	// Ids that are not UUIDs (the system roles') page too; a cursor is
	// only ever compared with the list's ids.
	odd := []row{{"role_admin"}, {"role_moderator"}, {"role_user"}}
	items, next, err := pageList(odd, &pageInput{Limit: 2}, label, rowID)
	require.NoError(t, err)
	require.Equal(t, []string{"item role_admin", "item role_moderator"}, items)
	require.Equal(t, encodeCursor("role_moderator"), *next)
	items, next, err = pageList(odd, &pageInput{Limit: 2, Cursor: *next}, label, rowID)
	require.NoError(t, err)
	require.Equal(t, []string{"item role_user"}, items)
	require.Nil(t, next)

	// The cursor of the last item answers an empty last page.
	items, next, err = pageList(all, &pageInput{Limit: 1, Cursor: encodeCursor(all[1].id)}, label, rowID)
	require.NoError(t, err)
	require.Empty(t, items)
	require.NotNil(t, items)
	require.Nil(t, next)
}
