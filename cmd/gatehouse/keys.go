package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the token signing keys; re-seal secrets under a new master key",
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
	cmd.AddCommand(list, rotate, newRotateMasterCmd())
	return cmd
}

func newRotateMasterCmd() *cobra.Command {
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate-master",
		Short: "Re-seal every secret under a new master key (GATEHOUSE_SECRET_KEY; the old one in GATEHOUSE_SECRET_KEY_OLD)",
		Long: "Re-seals every secret stored sealed under the master key (signing keys, TOTP secrets, webhook secrets,\n" +
			"queued SMS bodies) under the new GATEHOUSE_SECRET_KEY, opening them with it or GATEHOUSE_SECRET_KEY_OLD.\n" +
			"It works in batches, one transaction each, while servers run; it can be stopped and run again, and skips\n" +
			"what is already sealed under the new key. Steps: restart every instance with the new GATEHOUSE_SECRET_KEY\n" +
			"and the old key in GATEHOUSE_SECRET_KEY_OLD (they read either); run this; restart them without\n" +
			"GATEHOUSE_SECRET_KEY_OLD. See docs/operations.md, \"Master key rotation\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(cfg *config.Config, db *sqlstore.DB) error {
				if cfg.SecretKey == "" {
					return errors.New("GATEHOUSE_SECRET_KEY is not set: give the new master key in it and the previous one in GATEHOUSE_SECRET_KEY_OLD")
				}
				box, err := secret.NewKeyring(cfg.MasterKey, cfg.OldMasterKey)
				if err != nil {
					return err
				}
				newOnly, err := secret.NewBox(cfg.MasterKey)
				if err != nil {
					return err
				}
				return rotateMaster(cmd.Context(), cmd.OutOrStdout(), db, box, newOnly, batch)
			})
		},
	}
	cmd.Flags().IntVar(&batch, "batch-size", sqlstore.DefaultResealBatch, "rows re-sealed per transaction")
	return cmd
}

// rotateMaster re-seals every sealed column under box's current key, then
// checks that the new key alone opens everything.
func rotateMaster(ctx context.Context, out io.Writer, db *sqlstore.DB, box, newOnly *secret.Box, batch int) error {
	if batch < 1 {
		return errors.New("--batch-size must be at least 1")
	}
	ids := box.IDs()
	if len(ids) == 1 {
		fmt.Fprintf(out, "GATEHOUSE_SECRET_KEY_OLD is not set: only re-sealing what does not name the master key %s (GATEHOUSE_SECRET_KEY)\n", ids[0])
	} else {
		fmt.Fprintf(out, "re-sealing under the master key %s (GATEHOUSE_SECRET_KEY); the old key %s (GATEHOUSE_SECRET_KEY_OLD) opens the rest\n", ids[0], ids[1])
	}
	var failed []string
	for _, col := range sealedColumns() {
		st, err := db.Reseal(ctx, col, box, sqlstore.ResealOptions{Batch: batch, Progress: func(s sqlstore.ResealStats) {
			fmt.Fprintf(out, "%s: %d rows visited, %d re-sealed\n", col, s.Rows, s.Resealed)
		}})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: done: %d sealed values, %d re-sealed, %d already under the new key, %d open with neither key\n",
			col, st.Values, st.Resealed, st.Current, len(st.Failed))
		for _, id := range st.Failed {
			failed = append(failed, col.Table+" "+id)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d sealed values open under neither GATEHOUSE_SECRET_KEY nor GATEHOUSE_SECRET_KEY_OLD and were left as they are (%s); "+
			"if the key they were sealed with is lost, see docs/runbook.md, \"Master key loss\"", len(failed), rowList(failed))
	}
	// A server still sealing under the old key would undo the rotation
	// behind our back: make sure the new key alone opens everything.
	check, err := checkSealed(ctx, db, newOnly)
	if err != nil {
		return err
	}
	if len(check.Failed) > 0 {
		return fmt.Errorf("%d sealed values were sealed under another key while the rotation ran (%s): an instance still runs with the old "+
			"master key as GATEHOUSE_SECRET_KEY; restart every instance with the new GATEHOUSE_SECRET_KEY and the old one in "+
			"GATEHOUSE_SECRET_KEY_OLD, then run rotate-master again", len(check.Failed), rowList(check.Failed))
	}
	_, err = fmt.Fprintf(out, "done: all %d sealed values open under the new master key %s alone; restart every instance without GATEHOUSE_SECRET_KEY_OLD\n",
		check.Values, ids[0])
	return err
}

// orDash formats t for a table, "-" when zero.
func orDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
