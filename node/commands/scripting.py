"""(placeholder: filled in by S2)"""
