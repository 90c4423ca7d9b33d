package main

import (
	"context"

	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

// migrator is what the migrate command needs from the database.
type migrator interface {
	MigrateUp(ctx context.Context) error
	MigrateDown(ctx context.Context) error
	MigrateStatus(ctx context.Context) ([]sqlstore.MigrationStatus, error)
}
