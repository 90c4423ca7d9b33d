// Package authz answers "may this user do that?" from the permissions of
// the user's roles, with "*" and "resource:*" wildcards, fast enough to ask
// on every request: each user's permissions are compiled once into a Set
// and kept in memory for five minutes, and every instance drops its copy
// the moment a role or an assignment changes (an invalidation published on
// the cache's pub/sub). It also manages roles and their assignment.
package authz

import "strings"

// Set is a compiled permission set.
type Set struct {
	all       bool
	exact     map[string]struct{}
	resources map[string]struct{} // resources granted with "resource:*"
}

// Compile builds a Set from permission strings; invalid ones are ignored.
func Compile(perms []string) *Set {
	s := &Set{exact: make(map[string]struct{}, len(perms)), resources: map[string]struct{}{}}
	for _, p := range perms {
		switch res, act, ok := strings.Cut(p, ":"); {
		case p == "*":
			s.all = true
		case ok && act == "*":
			s.resources[res] = struct{}{}
		case ok:
			s.exact[p] = struct{}{}
		}
	}
	return s
}

// Allows reports whether the set grants perm ("resource:action").
func (s *Set) Allows(perm string) bool {
	if s.all {
		return true
	}
	if _, ok := s.exact[perm]; ok {
		return true
	}
	res, _, ok := strings.Cut(perm, ":")
	if !ok {
		return false
	}
	_, ok = s.resources[res]
	return ok
}

// Covers reports whether the set grants everything perms grant: what an
// assigner must hold to hand a role with perms to someone.
func (s *Set) Covers(perms []string) bool {
	for _, p := range perms {
		res, act, _ := strings.Cut(p, ":")
		switch {
		case s.all:
		case p == "*":
			return false
		case act == "*":
			if _, ok := s.resources[res]; !ok {
				return false
			}
		default:
			if !s.Allows(p) {
				return false
			}
		}
	}
	return true
}
