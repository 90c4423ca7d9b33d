package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit trail",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	var pageSize int
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit hash chain and report the first broken link",
		Long: "Reads every audit row in chain (seq) order, a page at a time, and checks each row's hash against its\n" +
			"contents and its link to the row before. Exits non-zero at the first broken link, naming its seq and id.\n" +
			"After retention pruning the chain starts at the oldest remaining row, whose prev_hash is taken as the anchor.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(_ *config.Config, db *sqlstore.DB) error { return verifyAudit(cmd, db, pageSize) })
		},
	}
	verify.Flags().IntVar(&pageSize, "page-size", audit.DefaultPageSize, "rows read per query")
	cmd.AddCommand(verify)
	return cmd
}

// verifyAudit walks the chain and reports on the command's output.
func verifyAudit(cmd *cobra.Command, db *sqlstore.DB, pageSize int) error {
	rep, err := audit.Verify(cmd.Context(), db, pageSize)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if rep.Unchained > 0 {
		fmt.Fprintf(out, "%d rows from before the chain existed were not checked\n", rep.Unchained)
	}
	if !rep.OK() {
		fmt.Fprintf(out, "%d rows checked before the break\n", rep.Checked)
		return rep.Break
	}
	if rep.Checked == 0 {
		_, err = fmt.Fprintln(out, "OK: the audit chain is empty")
		return err
	}
	anchor := "the start of the chain"
	if rep.Anchor != "" {
		anchor = "anchor prev_hash " + rep.Anchor + " (earlier rows were pruned)"
	}
	_, err = fmt.Fprintf(out, "OK: %d rows checked, seq %d to %d, from %s\nhead hash %s\n",
		rep.Checked, rep.FirstSeq, rep.LastSeq, anchor, rep.Head)
	return err
}
