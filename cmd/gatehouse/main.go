// Command gatehouse is the Gatehouse authentication server and its
// administration tool. With no arguments it serves.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", oneLine(err))
		stop()
		os.Exit(1)
	}
}

// oneLine folds a multi-line error (pgx lists every address it tried) into
// the single line an operator sees when start-up stops.
func oneLine(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	serve := newServeCmd()
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: a self-hosted authentication and authorization server",
		Long:          "Gatehouse serves registration, login, MFA, sessions, tokens, roles and more over a REST API.\nWith no command it runs `gatehouse serve`. Settings come from GATEHOUSE_* environment variables and ./.env.",
		Version:       gatehouse.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          serve.RunE,
	}
	root.Flags().AddFlagSet(serve.Flags())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serve, newMigrateCmd(), newKeysCmd(), newUsersCmd(), newRolesCmd(), newAuditCmd(), newOpenAPICmd(), newVersionCmd(), newHealthcheckCmd(),
		newLoadtestCmd(), newBackupCmd(), newRestoreCmd(), newClientsCmd())
	return root
}

// requireSubcommand makes a command group fail on a missing or unknown
// subcommand instead of silently printing help with exit code 0.
func requireSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())
	}
	return fmt.Errorf("unknown command %q for %s; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), gatehouse.Version())
			return err
		},
	}
}
