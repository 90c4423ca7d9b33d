package main

import (
	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func newOpenAPICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "Print the OpenAPI 3.1 document",
		Long:  "Print the OpenAPI 3.1 document of the HTTP API. No database or configuration is needed.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := httpapi.OpenAPIJSON()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(spec, '\n'))
			return err
		},
	}
}
