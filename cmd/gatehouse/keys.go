package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the token signing keys",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(a *app.App) error {
				ks, err := a.Ring.List(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KID\tALG\tSTATUS\tCREATED\tPUBLISHED UNTIL")
				for _, k := range ks {
					status, until := "signing", "-"
					if !k.Active() {
						status = "retired"
						if k.ExpiresAt != nil {
							until = k.ExpiresAt.UTC().Format(time.RFC3339)
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, status, k.CreatedAt.UTC().Format(time.RFC3339), until)
				}
				return w.Flush()
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key; older keys keep verifying until their tokens expire",
		Long:  "Make a new signing key. Running servers start signing with it within a minute; retired public keys stay in the JWKS until every token they signed has expired.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(a *app.App) error {
				k, err := a.Ring.Rotate(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), "new signing key:", k.ID)
				return err
			})
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}
