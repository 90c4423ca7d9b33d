package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or show database migrations",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	run := func(name, short string, do func(cmd *cobra.Command, db migrator) error) *cobra.Command {
		return &cobra.Command{
			Use:   name,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withStore(cmd, func(_ *config.Config, db *sqlstore.DB) error { return do(cmd, db) })
			},
		}
	}
	cmd.AddCommand(
		run("up", "Apply every pending migration (River's and Gatehouse's)", func(cmd *cobra.Command, db migrator) error {
			if err := db.MigrateUp(cmd.Context()); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return err
		}),
		run("down", "Roll back the newest Gatehouse migration", func(cmd *cobra.Command, db migrator) error {
			if err := db.MigrateDown(cmd.Context()); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "rolled back one migration")
			return err
		}),
		run("status", "List migrations and whether each is applied", func(cmd *cobra.Command, db migrator) error {
			st, err := db.MigrateStatus(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SOURCE\tVERSION\tNAME\tAPPLIED")
			for _, m := range st {
				applied := "pending"
				if m.Applied {
					applied = "applied"
					if m.AppliedAt != nil {
						applied = m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
					}
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", m.Source, m.Version, m.Name, applied)
			}
			return w.Flush()
		}),
	)
	return cmd
}
