//! Placeholder: the SMB source arrives with issue 4.
