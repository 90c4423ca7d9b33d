package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
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
		Long: "List signing keys, newest first. STATUS is signing (the key that signs new tokens), " +
			"next (published in the JWKS, signs from SIGNS FROM) or retired (only verifies, " +
			"published until PUBLISHED UNTIL). SIGNS UNTIL is when a scheduled rotation ends a key's signing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(a *app.App) error {
				ks, err := a.Ring.Statuses(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KID\tALG\tSTATUS\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL")
				for _, k := range ks {
					until := "-"
					if k.ExpiresAt != nil {
						until = k.ExpiresAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
						k.CreatedAt.UTC().Format(time.RFC3339), orDash(k.SignsFrom), orDash(k.SignsUntil), until)
				}
				return w.Flush()
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key; older keys keep verifying until their tokens expire",
		Long: fmt.Sprintf("Make a new signing key. It is published in the JWKS at once and starts signing "+
			"%d minutes later (every server and every verifier's cached JWKS has it by then); "+
			"the current key signs until then. Retired public keys stay in the JWKS until every "+
			"token they signed has expired.", int(keys.PublishDelay/time.Minute)),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(a *app.App) error {
				k, err := a.Ring.Rotate(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "new signing key: %s (published now, signs from %s)\n",
					k.ID, k.CreatedAt.Add(a.Ring.PublishDelay()).UTC().Format(time.RFC3339))
				return err
			})
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}

// orDash formats t for a table, "-" when zero.
func orDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
