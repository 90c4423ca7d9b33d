package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
)

func newRolesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Inspect roles",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List roles and their permissions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(a *app.App) error {
				roles, err := a.Roles.ListRoles(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSYSTEM\tPERMISSIONS\tDESCRIPTION")
				for _, r := range roles {
					fmt.Fprintf(w, "%s\t%t\t%s\t%s\n", r.Name, r.System, strings.Join(r.Permissions, ","), r.Description)
				}
				return w.Flush()
			})
		},
	})
	return cmd
}
