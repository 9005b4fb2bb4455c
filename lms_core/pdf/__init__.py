"""PDF generation helpers shared by the demo documents, transcripts and reports."""
