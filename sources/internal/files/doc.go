// Package files owns what the readers do with the file system besides
// reading their own file: opening a source (Open), resolving attachment
// paths against the source's folder without leaving it (Folder), and
// streaming an attachment that must still be what Load saw
// (OpenAttachment, ExactReader: sources.ErrAttachmentChanged otherwise).
package files
