package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Store is what role management needs from the database.
type Store interface {
	store.Roles
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Service manages roles and their assignment under three rules: system
// roles are never deleted (and admin's permissions never change); nobody
// grants, through a role they create, change or assign, anything they do
// not hold themselves; and nobody acts on a user (roles here; lock, unlock
// and sessions through MayActOn) who holds something they do not.
type Service struct {
	store   Store
	checker *Checker
	events  store.Emitter
	now     func() time.Time
}

// NewService makes a Service.
func NewService(st Store, checker *Checker, ev store.Emitter, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, checker: checker, events: ev, now: now}
}

// Checker is the permission checker the service invalidates.
func (s *Service) Checker() *Checker { return s.checker }

var (
	errSystemRole = gatehouse.Errorf(gatehouse.CodeSystemRole, "system roles cannot be deleted or renamed, and admin's permissions cannot change")
	errRoleExists = gatehouse.Errorf(gatehouse.CodeConflict, "a role with this name already exists")
	errNoRole     = gatehouse.Errorf(gatehouse.CodeNotFound, "no such role")
)

// DeniedError refuses an actor granting, changing, assigning or removing
// permissions they do not hold themselves. It unwraps to the
// permission_denied error the caller answers with; Missing names the
// permissions (for the audit trail, not for the answer).
type DeniedError struct {
	Missing []string
	err     error
}

func (e *DeniedError) Error() string { return e.err.Error() }

// Unwrap returns the permission_denied error.
func (e *DeniedError) Unwrap() error { return e.err }

func validatePermissions(field string, perms []string) ([]string, error) {
	out := make([]string, 0, len(perms))
	for i, p := range perms {
		p = strings.TrimSpace(p)
		if !gatehouse.ValidPermission(p) {
			return nil, gatehouse.InvalidField(fmt.Sprintf("%s[%d]", field, i),
				fmt.Sprintf("%q is not a permission: use \"resource:action\", \"resource:*\" or \"*\"", p))
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// covers checks the actor's set holds every permission in perms. The set
// is read before any transaction opens (the checker reads the database
// outside transactions).
func covers(actor *Set, perms []string, what string) error {
	return deny(actor, perms, fmt.Sprintf("you cannot %s permissions you do not hold yourself", what))
}

// deny answers a *DeniedError with message, naming each permission of
// perms that actor lacks, or nil when it lacks none.
func deny(actor *Set, perms []string, message string) error {
	var missing []string
	for _, p := range perms {
		if !actor.Covers([]string{p}) && !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
	}
	if missing == nil {
		return nil
	}
	slices.Sort(missing)
	return &DeniedError{Missing: missing, err: gatehouse.Errorf(gatehouse.CodePermissionDenied, "%s", message)}
}

// errActOn is the refusal of acting on a user who holds more.
const errActOn = "you cannot act on a user holding permissions you do not hold yourself"

// actsOn applies the rule of granting to the person: nobody locks,
// unlocks, changes the roles of or ends the sessions of a user holding a
// permission they do not hold themselves, or a moderator could lock out
// (and sign out) an administrator. Acting on oneself is not refused here.
func actsOn(actor *Set, actorID, userID string, targetPerms []string) error {
	if actorID == userID {
		return nil
	}
	return deny(actor, targetPerms, errActOn)
}

// MayActOn returns nil when actorID may act on userID (lock, unlock,
// change roles, end sessions): when actorID holds every permission userID
// holds. Otherwise it answers a *DeniedError (403 permission_denied)
// naming what actorID lacks. Both permission lists are read through tx,
// so the check sees the state of the change it guards and never waits for
// another connection (SQLite has one). An empty actorID is the operator
// at the command line, who may act on anyone.
func (s *Service) MayActOn(ctx context.Context, tx store.Tx, actorID, userID string) error {
	if actorID == "" || actorID == userID {
		return nil
	}
	held, err := tx.UserPermissions(ctx, actorID)
	if err != nil {
		return fmt.Errorf("authz: actor's permissions: %w", err)
	}
	target, err := tx.UserPermissions(ctx, userID)
	if err != nil {
		return fmt.Errorf("authz: target's permissions: %w", err)
	}
	return actsOn(Compile(held), actorID, userID, target)
}

// ListRoles returns every role by name.
func (s *Service) ListRoles(ctx context.Context) ([]gatehouse.Role, error) {
	return s.store.ListRoles(ctx)
}

// CreateRole makes a role.
func (s *Service) CreateRole(ctx context.Context, actorID, name, description string, perms []string) (gatehouse.Role, error) {
	name = strings.TrimSpace(name)
	if !gatehouse.ValidRoleName(name) {
		return gatehouse.Role{}, gatehouse.InvalidField("name", "a role name is 1 to 64 lower-case letters, digits, '_', '-' or '.'")
	}
	perms, err := validatePermissions("permissions", perms)
	if err != nil {
		return gatehouse.Role{}, err
	}
	actor, err := s.checker.Set(ctx, actorID)
	if err != nil {
		return gatehouse.Role{}, err
	}
	if err := covers(actor, perms, "grant"); err != nil {
		return gatehouse.Role{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	r := gatehouse.Role{ID: gatehouse.NewID(), Name: name, Description: strings.TrimSpace(description), Permissions: perms, CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateRole(ctx, r); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errRoleExists
			}
			return err
		}
		return s.emit(ctx, tx, gatehouse.EventRoleCreated, actorID, r)
	})
	return r, err
}

// UpdateRole changes a role's description or permissions (nil leaves one
// as it is). Every instance drops its cached permission sets at once.
func (s *Service) UpdateRole(ctx context.Context, actorID, id string, description *string, permissions *[]string) (gatehouse.Role, error) {
	var r gatehouse.Role
	var perms []string
	actor, err := s.checker.Set(ctx, actorID)
	if err != nil {
		return r, err
	}
	if permissions != nil {
		var err error
		if perms, err = validatePermissions("permissions", *permissions); err != nil {
			return r, err
		}
	}
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if r, err = tx.GetRole(ctx, id); errors.Is(err, store.ErrNotFound) {
			return errNoRole
		} else if err != nil {
			return err
		}
		if permissions != nil {
			if r.Name == gatehouse.RoleAdmin {
				return errSystemRole
			}
			// Both what the role had and what it gets must be within the
			// actor's own permissions: nobody edits a role above them.
			if err := covers(actor, append(slices.Clone(r.Permissions), perms...), "change"); err != nil {
				return err
			}
			r.Permissions = perms
		}
		if description != nil {
			r.Description = strings.TrimSpace(*description)
		}
		r.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
		if err := tx.UpdateRole(ctx, r); err != nil {
			return err
		}
		return s.emit(ctx, tx, gatehouse.EventRoleUpdated, actorID, r)
	})
	if err != nil {
		return r, err
	}
	s.checker.InvalidateAll(ctx)
	return r, nil
}

// DeleteRole removes a role that is not a system role.
func (s *Service) DeleteRole(ctx context.Context, actorID, id string) error {
	actor, err := s.checker.Set(ctx, actorID)
	if err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		r, err := tx.GetRole(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return errNoRole
		}
		if err != nil {
			return err
		}
		if r.System {
			return errSystemRole
		}
		if err := covers(actor, r.Permissions, "remove"); err != nil {
			return err
		}
		if err := tx.DeleteRole(ctx, id); err != nil {
			return err
		}
		return s.emit(ctx, tx, gatehouse.EventRoleDeleted, actorID, r)
	})
	if err != nil {
		return err
	}
	s.checker.InvalidateAll(ctx)
	return nil
}

func (s *Service) emit(ctx context.Context, tx store.Tx, t gatehouse.EventType, actorID string, r gatehouse.Role) error {
	_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: t, ActorID: actorID,
		Data: map[string]any{"role_id": r.ID, "name": r.Name, "permissions": r.Permissions}})
	return err
}

// SetUserRoles replaces the user's roles. The actor must hold every
// permission the user holds, and every permission of each role added or
// removed: a moderator cannot make anyone admin, nor unmake one, nor
// touch an administrator's roles at all. Nobody removes from themselves a role
// granting "*" (409 conflict), so the last administrator cannot.
func (s *Service) SetUserRoles(ctx context.Context, actorID, userID string, names []string) (gatehouse.User, error) {
	clean := make([]string, 0, len(names))
	// Where each name first appears in the request, so an error names the
	// element the caller sent, not its place in the sorted set.
	index := make(map[string]int, len(names))
	for i, n := range names {
		n = strings.TrimSpace(n)
		if !gatehouse.ValidRoleName(n) {
			return gatehouse.User{}, gatehouse.InvalidField(fmt.Sprintf("roles[%d]", i), fmt.Sprintf("%q is not a role name", n))
		}
		if _, seen := index[n]; !seen {
			index[n] = i
		}
		clean = append(clean, n)
	}
	slices.Sort(clean)
	clean = slices.Compact(clean)
	actor, err := s.checker.Set(ctx, actorID)
	if err != nil {
		return gatehouse.User{}, err
	}
	var u gatehouse.User
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		before, err := tx.GetUser(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such user")
		}
		if err != nil {
			return err
		}
		held, err := tx.UserPermissions(ctx, userID)
		if err != nil {
			return err
		}
		if err := actsOn(actor, actorID, userID, held); err != nil {
			return err
		}
		roles, err := tx.ListRoles(ctx)
		if err != nil {
			return err
		}
		byName := map[string]gatehouse.Role{}
		for _, r := range roles {
			byName[r.Name] = r
		}
		var touched []string
		for _, n := range clean {
			r, ok := byName[n]
			if !ok {
				return gatehouse.InvalidField(fmt.Sprintf("roles[%d]", index[n]), fmt.Sprintf("no role is named %q", n))
			}
			if !slices.Contains(before.Roles, n) {
				touched = append(touched, r.Permissions...)
			}
		}
		for _, n := range before.Roles {
			if !slices.Contains(clean, n) {
				touched = append(touched, byName[n].Permissions...)
				if actorID == userID && slices.Contains(byName[n].Permissions, "*") {
					// The only administrator would otherwise be one call
					// away from leaving nobody able to administer.
					return gatehouse.Errorf(gatehouse.CodeConflict,
						"you cannot remove your own %s role, which grants every permission; another administrator can", n)
				}
			}
		}
		if err := covers(actor, touched, "assign or remove"); err != nil {
			return err
		}
		if err := tx.SetUserRoles(ctx, userID, clean); err != nil {
			return err
		}
		if u, err = tx.GetUser(ctx, userID); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserRolesChanged, UserID: userID, ActorID: actorID,
			Data: map[string]any{"roles": u.Roles, "previous_roles": before.Roles}})
		return err
	})
	if err != nil {
		return u, err
	}
	s.checker.InvalidateUser(ctx, userID)
	return u, nil
}

// ListUsers returns a page of users for administrators.
func (s *Service) ListUsers(ctx context.Context, q store.UserQuery) ([]gatehouse.User, error) {
	return s.store.ListUsers(ctx, q)
}
