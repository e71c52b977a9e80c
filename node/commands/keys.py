"""(filled in by issue S1 work in progress)"""
