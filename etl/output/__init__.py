"""What a run writes: the results and errors files (CSV or workbook), the summary,
the HTML report and the metrics; and the check that none of them overwrites another."""
