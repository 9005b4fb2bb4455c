"""Reports for org admins and auditors: 调训 progress and study hours, with CSV/XLSX exports."""
