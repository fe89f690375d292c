"""The commands: affelios-import, affelios-summary and affelios-journal. They parse,
wire and report; the work is the core's (`affelios_import.Importer`)."""
